# `cmake --install` → headers, libretnet, the CLI, the bundled model and a relocatable CMake package:
#   find_package(retnet CONFIG REQUIRED)  →  target retnet::retnet
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS retnet EXPORT retnetTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Only the public headers: std types only, no third-party includes.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/retnet DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET retnet_cli)
  set_target_properties(retnet_cli PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
  install(TARGETS retnet_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/models/kjv-retnet/config.json)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/models/kjv-retnet DESTINATION ${CMAKE_INSTALL_DATADIR}/retnet/models)
endif()

install(EXPORT retnetTargets NAMESPACE retnet:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/retnet)
# find_dependency() lines for retnetConfig.cmake: none for a shared library (tests/package/consumer_test.sh
# checks that its installed package names no private dependency).
set(RETNET_CONFIG_DEPENDENCIES "")
if(NOT RETNET_SHARED)
  set(_deps Threads nlohmann_json spdlog)
  if(NOT OpenBLAS_FOUND)
    list(APPEND _deps BLAS)
  endif()
  if(RETNET_WITH_CUDA)
    list(APPEND _deps CUDAToolkit)
  endif()
  foreach(_d ${_deps})
    string(APPEND RETNET_CONFIG_DEPENDENCIES "find_dependency(${_d})\n")
  endforeach()
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/retnetConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/retnetConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/retnet)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/retnetConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/retnetConfig.cmake ${PROJECT_BINARY_DIR}/retnetConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/retnet)
