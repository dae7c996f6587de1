// Test fixtures written by tools/make_encoder_fixtures.py: .npy arrays read through xtensor.
#pragma once

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

#include "jepa/nn/param.hpp"

namespace jepa::test {

inline std::filesystem::path fixture_dir(const std::string& name) { return std::filesystem::path(JEPA_FIXTURE_DIR) / name; }

inline nlohmann::json load_json(const std::filesystem::path& p) {
  std::ifstream f(p);
  BOOST_REQUIRE_MESSAGE(f.good(), "missing fixture " << p << " (regenerate with tools/make_encoder_fixtures.py)");
  return nlohmann::json::parse(f);
}

struct Array {
  std::vector<std::size_t> shape;
  std::vector<double> data;  // every fixture is read as double, whatever its stored dtype
  std::size_t size() const { return data.size(); }
};

/// Loads a .npy of float32, float64 or int64 as doubles.
inline Array load_array(const std::filesystem::path& p) {
  BOOST_REQUIRE_MESSAGE(std::filesystem::exists(p), "missing fixture " << p);
  std::ifstream f(p, std::ios::binary);
  std::string head(10, '\0');
  f.read(head.data(), 10);
  const std::size_t hlen = static_cast<unsigned char>(head[8]) | (static_cast<unsigned char>(head[9]) << 8);
  std::string hdr(hlen, '\0');
  f.read(hdr.data(), static_cast<std::streamsize>(hlen));
  Array a;
  auto take = [&](auto arr) {
    a.shape.assign(arr.shape().begin(), arr.shape().end());
    a.data.assign(arr.begin(), arr.end());
  };
  if (hdr.find("'<f4'") != std::string::npos) take(xt::load_npy<float>(p.string()));
  else if (hdr.find("'<f8'") != std::string::npos) take(xt::load_npy<double>(p.string()));
  else if (hdr.find("'<i8'") != std::string::npos) take(xt::load_npy<std::int64_t>(p.string()));
  else BOOST_FAIL("unsupported dtype in " << p << ": " << hdr);
  return a;
}

template <class T>
std::vector<T> as(const Array& a) {
  return std::vector<T>(a.data.begin(), a.data.end());
}

/// Copies every parameter of `layout` from <dir>/<key>.npy, checking shapes. Returns the number of
/// tensors loaded.
template <class T>
std::size_t load_params(const nn::ParamLayout& layout, T* P, const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& p : layout.params()) {
    const Array a = load_array(dir / (p.name + ".npy"));
    std::vector<index_t> shp(a.shape.begin(), a.shape.end());
    BOOST_REQUIRE_MESSAGE(Shape(shp) == p.shape, "shape of " << p.name << ": fixture " << Shape(shp).str()
                                                              << " vs model " << p.shape.str());
    for (std::size_t i = 0; i < a.size(); ++i) P[p.offset + i] = static_cast<T>(a.data[i]);
    ++n;
  }
  return n;
}

}  // namespace jepa::test
