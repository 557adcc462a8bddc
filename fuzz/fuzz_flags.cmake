# Included by the top-level CMakeLists.txt when FEDMED_FUZZ is ON, before any target is defined:
# every target (our libraries and the harnesses) is compiled with libFuzzer's coverage
# instrumentation and AddressSanitizer + UndefinedBehaviorSanitizer, so that a bug in a parser is
# found wherever it lies. Third-party libraries (LibTorch, DCMTK, stb, libzip, toml++ inlined
# headers excepted) are Debian's uninstrumented builds.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "FEDMED_FUZZ needs clang (libFuzzer): configure with "
                      "-DCMAKE_CXX_COMPILER=clang++-14 (scripts/fuzz.sh does)")
endif()
set(FEDMED_FUZZ_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=undefined)
add_compile_options(-fsanitize=fuzzer-no-link ${FEDMED_FUZZ_SANITIZERS} -fno-omit-frame-pointer
                    -g)
add_link_options(${FEDMED_FUZZ_SANITIZERS})
