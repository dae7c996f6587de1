// The single Boost.Test main shared by every test executable.
#define BOOST_TEST_MODULE jepa
#include <boost/test/unit_test.hpp>
