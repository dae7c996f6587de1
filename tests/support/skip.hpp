// Skipped test cases, told to CTest: a case whose prerequisite is missing (e.g. no ffmpeg binary)
// calls skip_case(why) and returns; the shared main (test_main.cpp) then exits with 77 instead of 0,
// which tests/CMakeLists.txt declares as the SKIP_RETURN_CODE, so CTest reports the program as
// skipped instead of passed. A failure anywhere still fails the program (its own nonzero code).
#pragma once

#include <atomic>
#include <string>

#include <boost/test/unit_test.hpp>

namespace jepa::test {

inline std::atomic<int>& skipped_cases() {
  static std::atomic<int> n{0};
  return n;
}

inline void skip_case(const std::string& why) {
  ++skipped_cases();
  BOOST_TEST_MESSAGE("SKIPPED: " << why);
}

}  // namespace jepa::test
