# Fuzz targets (tests/fuzz/<target>.cpp, each one LLVMFuzzerTestOneInput). Included from
# tests/CMakeLists.txt.
#   fuzz_replay_<target>   always built (any compiler): replays tests/fuzz/corpus/<target>, one ctest each
#   fuzz_<target>          only with -DRETNET_FUZZ=ON (clang): the libFuzzer binary, built with
#                          -fsanitize=fuzzer,address,undefined; tools/fuzz.sh builds and runs them
set(RETNET_FUZZ_TARGETS safetensors config tokenizer_load tokenizer_roundtrip state_snapshot cli_args state_blob chat_template)
set(_fuzz_dir ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)

function(_retnet_fuzz_setup tgt name)
  # Targets reach internal headers (src/) to test the exact functions the loaders use: they link
  # retnet_internal, which has the symbols the shared libretnet hides.
  target_include_directories(${tgt} PRIVATE ${PROJECT_SOURCE_DIR}/src ${_fuzz_dir})
  target_compile_definitions(${tgt} PRIVATE RETNET_TEST_DATA="${CMAKE_CURRENT_SOURCE_DIR}/data"
                                            RETNET_MODEL_DIR="${PROJECT_SOURCE_DIR}/models/kjv-retnet")
  target_link_libraries(${tgt} PRIVATE retnet_internal nlohmann_json::nlohmann_json spdlog::spdlog)
  if(name STREQUAL "cli_args" OR name STREQUAL "state_blob" OR name STREQUAL "chat_template")
    target_link_libraries(${tgt} PRIVATE retnet_cli_lib)
  endif()
endfunction()

foreach(_t ${RETNET_FUZZ_TARGETS})
  if((_t STREQUAL "cli_args" OR _t STREQUAL "state_blob" OR _t STREQUAL "chat_template") AND NOT TARGET retnet_cli_lib)
    continue()
  endif()
  add_executable(fuzz_replay_${_t} ${_fuzz_dir}/${_t}.cpp ${_fuzz_dir}/replay_main.cpp)
  _retnet_fuzz_setup(fuzz_replay_${_t} ${_t})
  add_test(NAME fuzz_replay_${_t} COMMAND fuzz_replay_${_t} ${_fuzz_dir}/corpus/${_t})
  set_tests_properties(fuzz_replay_${_t} PROPERTIES TIMEOUT 300)

  if(RETNET_FUZZ)
    add_executable(fuzz_${_t} ${_fuzz_dir}/${_t}.cpp)
    _retnet_fuzz_setup(fuzz_${_t} ${_t})
    target_compile_options(fuzz_${_t} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${_t} PRIVATE -fsanitize=fuzzer)
  endif()
endforeach()
