# The library: every source under src/, kernels/ when CUDA is on, compiled once (retnet_objects) and
# linked into
#   retnet           libretnet, SHARED (or STATIC with -DRETNET_SHARED=OFF): installed as retnet::retnet;
#   retnet_internal  the same objects as a static library, for the in-tree programs that reach internal
#                    classes through src/ (tests, fuzz targets), which the shared libretnet does not
#                    export; retnet itself when that is static. Link either, never both (one copy of
#                    the library per program).
# Symbol visibility: everything is compiled with hidden visibility, so libretnet exports only what the
# public headers mark RETNET_API (include/retnet/export.h), and a version script (cmake/retnet.map)
# keeps only retnet:: and retnet_* names among those. Nothing internal and no code instantiated from a
# private dependency (nlohmann_json, fmt, spdlog) is exported, so none can collide with the
# application's own copies of them. The exported_symbols test checks it.
file(GLOB_RECURSE RETNET_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/*.cpp)
add_library(retnet_objects OBJECT ${RETNET_SOURCES})
set_target_properties(retnet_objects PROPERTIES CXX_VISIBILITY_PRESET hidden CUDA_VISIBILITY_PRESET hidden
                                                VISIBILITY_INLINES_HIDDEN ON)
target_include_directories(retnet_objects PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src
                                                  ${PROJECT_SOURCE_DIR}/kernels)
target_compile_options(retnet_objects PRIVATE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter -Werror=switch>)
# The CPU kernels use AVX2/FMA/F16C when the compiler may; dispatch is at compile time.
if(RETNET_NATIVE)
  target_compile_options(retnet_objects PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
else()
  target_compile_options(retnet_objects PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-mavx2 -mfma -mf16c>)
endif()
set(RETNET_PRIVATE_LIBS nlohmann_json::nlohmann_json spdlog::spdlog Threads::Threads)
if(OpenBLAS_FOUND)
  target_include_directories(retnet_objects PRIVATE ${OpenBLAS_INCLUDE_DIRS})
  list(APPEND RETNET_PRIVATE_LIBS ${OpenBLAS_LIBRARIES})
else()
  list(APPEND RETNET_PRIVATE_LIBS BLAS::BLAS)
endif()
if(RETNET_WITH_CUDA)
  file(GLOB RETNET_CUDA_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/*.cu)
  target_sources(retnet_objects PRIVATE ${RETNET_CUDA_SOURCES})
  target_compile_definitions(retnet_objects PRIVATE RETNET_WITH_CUDA=1)
  target_compile_options(retnet_objects PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings --Werror cross-execution-space-call>)
  list(APPEND RETNET_PRIVATE_LIBS CUDA::cudart CUDA::cublas)
endif()
# Their compile-time usage requirements (include directories, spdlog's definitions).
target_link_libraries(retnet_objects PRIVATE ${RETNET_PRIVATE_LIBS})

# A library of the objects above with the usage requirements of retnet::retnet.
function(_retnet_add_library name type)
  add_library(${name} ${type} ${ARGN} $<TARGET_OBJECTS:retnet_objects>)
  set_target_properties(${name} PROPERTIES LINKER_LANGUAGE CXX)
  target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>)
  target_compile_features(${name} PUBLIC cxx_std_20)
  if(RETNET_WITH_CUDA)
    target_compile_definitions(${name} PUBLIC RETNET_WITH_CUDA=1)
  endif()
  target_link_libraries(${name} PRIVATE ${RETNET_PRIVATE_LIBS})
endfunction()

if(RETNET_SHARED)
  _retnet_add_library(retnet SHARED)
  target_link_options(retnet PRIVATE "LINKER:--version-script=${PROJECT_SOURCE_DIR}/cmake/retnet.map")
  set_target_properties(retnet PROPERTIES LINK_DEPENDS ${PROJECT_SOURCE_DIR}/cmake/retnet.map)
  _retnet_add_library(retnet_internal STATIC EXCLUDE_FROM_ALL)
else()
  _retnet_add_library(retnet STATIC)
  add_library(retnet_internal ALIAS retnet)
endif()
set_target_properties(retnet PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
                                        EXPORT_NAME retnet)
add_library(retnet::retnet ALIAS retnet)

if(RETNET_BUILD_TOOLS)
  find_package(CLI11 REQUIRED)
  # Everything but main.cpp goes into an object library, so that the argument parsing can also be
  # driven in-process (tools/cli/app.hpp: dry_run, used by the cli_args fuzz target).
  file(GLOB RETNET_CLI_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tools/cli/*.cpp)
  list(REMOVE_ITEM RETNET_CLI_SOURCES ${PROJECT_SOURCE_DIR}/tools/cli/main.cpp)
  # The CLI is the library's first user: public headers only (no src/ include path). The objects do not
  # link the library themselves: the program that uses them does (retnet_cli: libretnet; a test that
  # also reaches internals: retnet_internal), so that it holds one copy of the library.
  add_library(retnet_cli_lib OBJECT ${RETNET_CLI_SOURCES})
  target_include_directories(retnet_cli_lib PUBLIC ${PROJECT_SOURCE_DIR}/tools/cli ${PROJECT_SOURCE_DIR}/tools
                                            PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(retnet_cli_lib PUBLIC CLI11::CLI11 PRIVATE nlohmann_json::nlohmann_json)
  # `retnet serve` (tools/serve/): its HTTP side (server.cpp) needs cpp-httplib, Debian's
  # libcpp-httplib-dev (a header plus a compiled library, found through pkg-config: cpp-httplib.pc);
  # without it unavailable.cpp stands in and the command says what is missing. The rest (scheduler,
  # prefix cache, request parsing) is always built, and unit-tested either way.
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(RETNET_HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
  endif()
  file(GLOB RETNET_SERVE_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tools/serve/*.cpp)
  if(RETNET_HTTPLIB_FOUND)
    list(REMOVE_ITEM RETNET_SERVE_SOURCES ${PROJECT_SOURCE_DIR}/tools/serve/unavailable.cpp)
    target_link_libraries(retnet_cli_lib PUBLIC PkgConfig::RETNET_HTTPLIB)
    message(STATUS "retnet: serve ON (cpp-httplib ${RETNET_HTTPLIB_VERSION})")
  else()
    list(REMOVE_ITEM RETNET_SERVE_SOURCES ${PROJECT_SOURCE_DIR}/tools/serve/server.cpp)
    message(WARNING "cpp-httplib not found (tools/install-deps.sh installs libcpp-httplib-dev): `retnet serve` "
                    "is built as a stub that refuses to run")
  endif()
  target_sources(retnet_cli_lib PRIVATE ${RETNET_SERVE_SOURCES})
  # The chat page at GET / (tools/serve/chat.html), embedded as bytes with its CSP hashes; rebuilt when
  # the page changes (cmake/embed_chat_page.cmake: plain CMake, no xxd).
  set(RETNET_CHAT_PAGE_HEADER ${PROJECT_BINARY_DIR}/generated/retnet_chat_page.hpp)
  add_custom_command(OUTPUT ${RETNET_CHAT_PAGE_HEADER}
                     COMMAND ${CMAKE_COMMAND} -DIN=${PROJECT_SOURCE_DIR}/tools/serve/chat.html
                             -DOUT=${RETNET_CHAT_PAGE_HEADER} -P ${PROJECT_SOURCE_DIR}/cmake/embed_chat_page.cmake
                     DEPENDS ${PROJECT_SOURCE_DIR}/tools/serve/chat.html ${PROJECT_SOURCE_DIR}/cmake/embed_chat_page.cmake
                     COMMENT "Embedding tools/serve/chat.html" VERBATIM)
  target_sources(retnet_cli_lib PRIVATE ${RETNET_CHAT_PAGE_HEADER})
  # The commit `retnet bench` reports (build_commit): refreshed at every build, not at configure time.
  set(RETNET_BUILD_COMMIT_HEADER ${PROJECT_BINARY_DIR}/generated/retnet_build_commit.hpp)
  add_custom_target(retnet_build_commit
                    COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR} -DOUT=${RETNET_BUILD_COMMIT_HEADER}
                            -P ${PROJECT_SOURCE_DIR}/cmake/build_commit.cmake
                    BYPRODUCTS ${RETNET_BUILD_COMMIT_HEADER}
                    COMMENT "" VERBATIM)
  add_dependencies(retnet_cli_lib retnet_build_commit)
  target_include_directories(retnet_cli_lib PRIVATE ${PROJECT_BINARY_DIR}/generated)
  target_compile_definitions(retnet_cli_lib PRIVATE RETNET_SOURCE_MODEL_DIR="${PROJECT_SOURCE_DIR}/models/kjv-retnet")
  add_executable(retnet_cli ${PROJECT_SOURCE_DIR}/tools/cli/main.cpp)
  set_target_properties(retnet_cli PROPERTIES OUTPUT_NAME retnet)
  target_link_libraries(retnet_cli PRIVATE retnet_cli_lib retnet)
endif()

if(RETNET_BUILD_TESTS)
  enable_testing()
  add_subdirectory(${PROJECT_SOURCE_DIR}/tests)
endif()
