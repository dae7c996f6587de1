// The finite-difference gradient check every module's test uses (Boost.Test assertions).
//   numerical g_i = (−f(x+2h) + 8f(x+h) − 8f(x−h) + f(x−2h)) / 12h     (fourth-order central differences)
// compared with the analytic gradient by the norm-wise relative error on at most `max_coords` evenly
// spread coordinates (all of them for small tensors).
#pragma once

#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <functional>
#include <vector>

#include "support/check.hpp"

namespace jepa::test {

struct FdCheck {
  double bound = 1e-8;          // largest accepted relative error
  std::size_t max_coords = 400;  // coordinates probed
  double h = 1e-4;               // finite-difference step
};

inline void check_against_fd(const char* what, double* x, std::size_t n, const double* analytic,
                             const std::function<double()>& loss, FdCheck c = {}) {
  const std::size_t step = n > c.max_coords ? n / c.max_coords : 1;
  std::vector<double> num, ana;
  for (std::size_t i = 0; i < n; i += step) {
    const double x0 = x[i];
    auto at = [&](double d) { x[i] = x0 + d; return loss(); };
    const double f2 = at(2 * c.h), f1 = at(c.h), m1 = at(-c.h), m2 = at(-2 * c.h);
    x[i] = x0;
    num.push_back((-f2 + 8 * f1 - 8 * m1 + m2) / (12 * c.h));
    ana.push_back(analytic[i]);
  }
  const double e = rel_error(ana, num);
  BOOST_TEST_MESSAGE(what << ": rel error " << e << " over " << num.size() << " coordinates");
  BOOST_TEST(e <= c.bound, what << ": rel error " << e << " > " << c.bound);
}

}  // namespace jepa::test
