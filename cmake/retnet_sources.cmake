# The library: every source under src/, kernels/ when CUDA is on.
file(GLOB_RECURSE RETNET_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/*.cpp)
if(RETNET_SHARED)
  add_library(retnet SHARED ${RETNET_SOURCES})
else()
  add_library(retnet STATIC ${RETNET_SOURCES})
endif()
set_target_properties(retnet PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
                                        EXPORT_NAME retnet)
add_library(retnet::retnet ALIAS retnet)
target_include_directories(retnet
  PUBLIC  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>
  PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/kernels)
target_compile_features(retnet PUBLIC cxx_std_20)
target_compile_options(retnet PRIVATE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
# The CPU kernels use AVX2/FMA/F16C when the compiler may; dispatch is at compile time.
if(RETNET_NATIVE)
  target_compile_options(retnet PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
else()
  target_compile_options(retnet PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-mavx2 -mfma -mf16c>)
endif()
target_link_libraries(retnet PRIVATE nlohmann_json::nlohmann_json spdlog::spdlog Threads::Threads)
if(OpenBLAS_FOUND)
  target_include_directories(retnet PRIVATE ${OpenBLAS_INCLUDE_DIRS})
  target_link_libraries(retnet PRIVATE ${OpenBLAS_LIBRARIES})
else()
  target_link_libraries(retnet PRIVATE BLAS::BLAS)
endif()

if(RETNET_WITH_CUDA)
  file(GLOB RETNET_CUDA_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/*.cu)
  target_sources(retnet PRIVATE ${RETNET_CUDA_SOURCES})
  target_compile_definitions(retnet PUBLIC RETNET_WITH_CUDA=1)
  target_compile_options(retnet PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings --Werror cross-execution-space-call>)
  target_link_libraries(retnet PRIVATE CUDA::cudart CUDA::cublas)
endif()

if(RETNET_BUILD_TOOLS)
  find_package(CLI11 REQUIRED)
  # Everything but main.cpp goes into a static library, so that the argument parsing can also be
  # driven in-process (tools/cli/app.hpp: dry_run, used by the cli_args fuzz target).
  file(GLOB RETNET_CLI_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tools/cli/*.cpp)
  list(REMOVE_ITEM RETNET_CLI_SOURCES ${PROJECT_SOURCE_DIR}/tools/cli/main.cpp)
  add_library(retnet_cli_lib STATIC ${RETNET_CLI_SOURCES})
  # The CLI is the library's first user: public headers only (no src/ include path).
  target_include_directories(retnet_cli_lib PUBLIC ${PROJECT_SOURCE_DIR}/tools/cli)
  target_link_libraries(retnet_cli_lib PUBLIC retnet CLI11::CLI11 PRIVATE nlohmann_json::nlohmann_json)
  execute_process(COMMAND git rev-parse --short HEAD WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                  OUTPUT_VARIABLE RETNET_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT RETNET_GIT_COMMIT)
    set(RETNET_GIT_COMMIT unknown)
  endif()
  target_compile_definitions(retnet_cli_lib PRIVATE RETNET_SOURCE_MODEL_DIR="${PROJECT_SOURCE_DIR}/models/kjv-retnet"
                                                    RETNET_BUILD_COMMIT="${RETNET_GIT_COMMIT}")
  add_executable(retnet_cli ${PROJECT_SOURCE_DIR}/tools/cli/main.cpp)
  set_target_properties(retnet_cli PROPERTIES OUTPUT_NAME retnet)
  target_link_libraries(retnet_cli PRIVATE retnet_cli_lib)
endif()

if(RETNET_BUILD_TESTS)
  enable_testing()
  add_subdirectory(${PROJECT_SOURCE_DIR}/tests)
endif()
