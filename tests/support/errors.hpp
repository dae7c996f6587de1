// Test helper for the error contract: a call must throw the given jepa:: exception type, its message
// must start with "jepa: " and contain every fragment (the field, the value, what is allowed).
#pragma once

#include <boost/test/unit_test.hpp>
#include <initializer_list>
#include <string>

namespace jepa::test {

template <class E, class F>
void expect_error(F&& f, std::initializer_list<std::string> fragments) {
  try {
    f();
    BOOST_ERROR("expected an exception");
  } catch (const E& e) {
    const std::string msg = e.what();
    BOOST_TEST_MESSAGE(msg);
    BOOST_TEST(msg.rfind("jepa: ", 0) == 0, "message does not start with 'jepa: ': " << msg);
    for (const auto& s : fragments) BOOST_TEST(msg.find(s) != std::string::npos, "'" << s << "' not in: " << msg);
  }
}

}  // namespace jepa::test
