# Kernel tests (included from tests/CMakeLists.txt).
#   retnet_simt               the SIMT emulator + every kernels/*.cu compiled as host C++ (RETNET_SIMT)
#   retnet_kernel_tests       tests/kernels/*_test.cpp compiled twice: against the emulator (Emu*) and,
#                             in a CUDA build, against the real kernels in libretnet (Gpu*, skipped
#                             without a device); plus the emulator's own tests (tests/simt)
#   kernel_resources          ctest: nvcc + ptxas -v limits on every kernel (tests/kernels/ptxas_check.cmake)
file(GLOB _kernel_cu CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/*.cu)
set(_simt_kernel_sources)
foreach(_cu ${_kernel_cu})
  get_filename_component(_name ${_cu} NAME_WE)
  if(_name STREQUAL "cuda_probe")  # needs the real runtime; not a kernel
    continue()
  endif()
  set(_wrapper ${CMAKE_CURRENT_BINARY_DIR}/simt_kernels/${_name}.cpp)
  file(CONFIGURE OUTPUT ${_wrapper} CONTENT "// generated: ${_cu} compiled for the SIMT emulator\n#include \"${_cu}\"\n")
  list(APPEND _simt_kernel_sources ${_wrapper})
endforeach()
file(GLOB _simt_backend_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/backend/cuda/*.cpp)

add_library(retnet_simt STATIC ${PROJECT_SOURCE_DIR}/tests/simt/simt.cpp ${PROJECT_SOURCE_DIR}/tests/simt/simt_capture.cpp ${_simt_kernel_sources} ${_simt_backend_sources})
target_compile_definitions(retnet_simt PUBLIC RETNET_SIMT=1)
target_include_directories(retnet_simt PUBLIC ${PROJECT_SOURCE_DIR}/tests/simt ${PROJECT_SOURCE_DIR}/kernels
                                              ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
# Kernels reinterpret weight bytes as uint4/float4 as device code does; keep the host compiler honest.
# #pragma unroll is for nvcc only.
target_compile_options(retnet_simt PUBLIC -fno-strict-aliasing -Wno-unknown-pragmas)
target_compile_options(retnet_simt PRIVATE -Wall -Wextra -Wno-unused-parameter -Werror=switch)
# The same instruction set as libretnet's CPU backend (FMA contraction included), so that where a
# kernel performs the CPU's operations in the CPU's order the emulator reproduces its bits.
if(RETNET_NATIVE)
  target_compile_options(retnet_simt PUBLIC -march=native)
else()
  target_compile_options(retnet_simt PUBLIC -mavx2 -mfma -mf16c)
endif()
target_link_libraries(retnet_simt PUBLIC retnet_internal Threads::Threads PRIVATE spdlog::spdlog)

file(GLOB _kernel_test_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/kernels/*_test.cpp)
add_library(retnet_kernel_tests_emu OBJECT ${_kernel_test_sources} ${PROJECT_SOURCE_DIR}/tests/simt/simt_test.cpp)
target_include_directories(retnet_kernel_tests_emu PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/kernels)
target_compile_definitions(retnet_kernel_tests_emu PRIVATE RETNET_TEST_DATA="${CMAKE_CURRENT_SOURCE_DIR}/data")
target_link_libraries(retnet_kernel_tests_emu PRIVATE retnet_simt GTest::gtest nlohmann_json::nlohmann_json)

add_executable(retnet_kernel_tests $<TARGET_OBJECTS:retnet_kernel_tests_emu>)
target_link_libraries(retnet_kernel_tests PRIVATE retnet_simt retnet_internal GTest::gtest GTest::gtest_main
                                                  nlohmann_json::nlohmann_json)
if(RETNET_WITH_CUDA)
  add_library(retnet_kernel_tests_gpu OBJECT ${_kernel_test_sources})
  target_include_directories(retnet_kernel_tests_gpu PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                             ${CMAKE_CURRENT_SOURCE_DIR}/kernels ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/kernels)
  target_compile_definitions(retnet_kernel_tests_gpu PRIVATE RETNET_TEST_DATA="${CMAKE_CURRENT_SOURCE_DIR}/data")
  target_link_libraries(retnet_kernel_tests_gpu PRIVATE retnet_internal GTest::gtest CUDA::cudart CUDA::cublas
                                                        nlohmann_json::nlohmann_json)
  target_sources(retnet_kernel_tests PRIVATE $<TARGET_OBJECTS:retnet_kernel_tests_gpu>)
  target_link_libraries(retnet_kernel_tests PRIVATE CUDA::cudart CUDA::cublas)
endif()
gtest_discover_tests(retnet_kernel_tests DISCOVERY_TIMEOUT 120)

# Resource limits of every kernel from ptxas -v, for sm_80 and sm_90 (skips without nvcc).
set(_nvcc "")
if(CMAKE_CUDA_COMPILER)
  set(_nvcc ${CMAKE_CUDA_COMPILER})
elseif(EXISTS /usr/local/cuda/bin/nvcc)
  set(_nvcc /usr/local/cuda/bin/nvcc)
endif()
add_test(NAME kernel_resources
         COMMAND ${CMAKE_COMMAND} -DNVCC=${_nvcc} -DKERNEL_DIR=${PROJECT_SOURCE_DIR}/kernels
                 -DSRC_DIR=${PROJECT_SOURCE_DIR}/src
                 -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/ptxas_check -P ${CMAKE_CURRENT_SOURCE_DIR}/kernels/ptxas_check.cmake)
set_tests_properties(kernel_resources PROPERTIES SKIP_REGULAR_EXPRESSION "kernel_resources: SKIPPED" TIMEOUT 900)
