// The single Boost.Test main shared by every test executable. It returns 77 (CTest's
// SKIP_RETURN_CODE, tests/CMakeLists.txt) when every case passed but some were skipped
// (support/skip.hpp), so a machine without a prerequisite does not count them as passed.
#define BOOST_TEST_MODULE jepa
#define BOOST_TEST_NO_MAIN
#define BOOST_TEST_ALTERNATIVE_INIT_API
#include <boost/test/unit_test.hpp>

#include <cstdio>

#include "support/skip.hpp"

int main(int argc, char* argv[]) {
  const int rc = boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
  if (rc == 0 && jepa::test::skipped_cases() > 0) {
    std::fprintf(stderr, "%d test case(s) skipped (SKIPPED: lines above); exit code 77 tells CTest\n",
                 jepa::test::skipped_cases().load());
    return 77;
  }
  return rc;
}
