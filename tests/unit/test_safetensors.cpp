// safetensors I/O (jepa/io/safetensors.hpp): round trips of every dtype and of a real model's
// parameters, zero-copy views, dtype conversion, interop with a file written by Python's official
// `safetensors` (tests/fixtures/safetensors/small.safetensors, from tools/make_safetensors_fixture.py),
// one clear IoError per kind of corruption, a deterministic fuzz loop (open either succeeds with
// consistent data or throws IoError), and atomic writes that fail midway without touching the old file.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "jepa/io/safetensors.hpp"
#include "jepa/jepa.hpp"

using namespace jepa;
using io::SafetensorsDType;
using io::SafetensorsFile;
using io::SafetensorsWriter;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TmpDir {
  fs::path path;
  TmpDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("jepa_safetensors_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path operator/(const std::string& name) const { return path / name; }
  /// Names in the directory that look like a writer's temporary file.
  std::vector<std::string> temp_files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path))
      if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path().filename().string());
    return out;
  }
};

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
std::string u64_le(std::uint64_t n) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &n, 8);
  return s;
}
/// A file from a header (written verbatim, unpadded) and a data section.
void write_raw_file(const fs::path& p, const std::string& header, const std::string& data) {
  write_bytes(p, u64_le(header.size()) + header + data);
}

/// The message of the IoError that f throws (a failed check if it throws nothing).
template <class F>
std::string io_error_message(F&& f) {
  try {
    f();
  } catch (const IoError& e) {
    BOOST_TEST_MESSAGE(e.what());  // --log_level=message shows every message checked here
    return e.what();
  }
  BOOST_ERROR("expected a jepa::IoError, but nothing was thrown");
  return {};
}
void check_words(const std::string& msg, std::initializer_list<std::string_view> words) {
  for (std::string_view w : words)
    BOOST_CHECK_MESSAGE(msg.find(w) != std::string::npos, "message lacks \"" << w << "\": " << msg);
}
#define CHECK_IO_ERROR(expr, ...) check_words(io_error_message([&] { (void)(expr); }), {__VA_ARGS__})

template <class T>
bool bitwise_equal(const T* a, const T* b, std::size_t n) {
  return n == 0 || std::memcmp(a, b, n * sizeof(T)) == 0;
}
template <class T>
bool bitwise_equal(std::span<const T> a, const std::vector<T>& b) {
  return a.size() == b.size() && bitwise_equal(a.data(), b.data(), a.size());
}

const float kInf = std::numeric_limits<float>::infinity();

}  // namespace

// ------------------------------------------------------------------------------------------------
// Round trips
// ------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(round_trip_every_dtype_and_metadata) {
  TmpDir dir;
  const std::vector<float> f32 = {1.5f, -2.25f, 3e-8f, kInf, -0.0f, 7.0f};
  const std::vector<double> f64 = {0.1, -1e300, 4.9e-324};
  const std::vector<bf16> b16 = {bf16(1.0f), bf16(-3.5f), bf16(1e-3f)};
  const std::vector<std::int64_t> i64 = {std::numeric_limits<std::int64_t>::min(), -1, 0,
                                         std::numeric_limits<std::int64_t>::max()};
  const std::vector<std::int32_t> i32 = {-7, 1 << 30};
  const std::vector<std::uint8_t> u8 = {0, 255, 17};

  SafetensorsWriter w;
  w.add("f32", {2, 3}, f32.data())
      .add("f64", {3}, f64.data())
      .add("bf16", {3}, b16.data())
      .add("i64", {2, 2}, i64.data())
      .add("i32", {2}, i32.data())
      .add_raw("u8", SafetensorsDType::u8, {3}, u8.data())
      .add_scalar<std::int64_t>("step", 123)
      .add<float>("empty", {0, 5}, nullptr)
      .set_metadata("format", "pt")
      .set_metadata("note", "unicode \xc3\xbc \xe2\x86\x92 ok");
  const fs::path p = dir / "all.safetensors";
  w.write(p);

  const SafetensorsFile f(p);
  // Data order: decreasing element size, insertion order within a size.
  const std::vector<std::string> order = {"f64", "i64", "step", "f32", "i32", "empty", "bf16", "u8"};
  BOOST_TEST(f.keys() == order, boost::test_tools::per_element());
  BOOST_TEST(f.size() == 8u);
  BOOST_TEST(f.file_size() == w.file_size());
  BOOST_TEST(f.data_offset() % 8 == 0u);
  BOOST_TEST(read_bytes(p).substr(8, f.header_size()) == w.header());
  BOOST_TEST(f.metadata().at("format") == "pt");
  BOOST_TEST(f.metadata().at("note") == "unicode \xc3\xbc \xe2\x86\x92 ok");
  BOOST_TEST(f.metadata().size() == 2u);

  const auto& info = f.info("f32");
  BOOST_TEST((info.dtype == SafetensorsDType::f32));
  BOOST_TEST((info.jepa_dtype() == DType::f32));
  BOOST_TEST((info.shape == Shape{2, 3}));
  BOOST_TEST(info.bytes() == 24u);
  BOOST_TEST(info.numel() == 6u);
  BOOST_TEST(f.contains("f32"));
  BOOST_TEST(!f.contains("F32"));

  BOOST_TEST(bitwise_equal(f.view<float>("f32"), f32));
  BOOST_TEST(bitwise_equal(std::span<const float>(f.read<float>("f32")), f32));
  BOOST_TEST(bitwise_equal(f.view<double>("f64"), f64));
  BOOST_TEST(bitwise_equal(f.view<bf16>("bf16"), b16));
  BOOST_TEST(bitwise_equal(std::span<const bf16>(f.read<bf16>("bf16")), b16));
  BOOST_TEST(bitwise_equal(f.view<std::int64_t>("i64"), i64));
  BOOST_TEST(bitwise_equal(f.view<std::int32_t>("i32"), i32));
  BOOST_TEST(bitwise_equal(f.view<std::uint8_t>("u8"), u8));
  BOOST_TEST(f.raw("u8").size() == 3u);
  BOOST_TEST(std::to_integer<int>(f.raw("u8")[1]) == 255);
  BOOST_TEST(f.info("step").shape.rank() == 0u);
  BOOST_TEST(f.read<std::int64_t>("step") == std::vector<std::int64_t>{123}, boost::test_tools::per_element());
  BOOST_TEST((f.info("empty").shape == Shape{0, 5}));
  BOOST_TEST(f.read<float>("empty").empty());
  BOOST_TEST(f.view<float>("empty").empty());

  // Same entries, same bytes: checkpoints are reproducible.
  w.write(dir / "again.safetensors");
  BOOST_TEST((read_bytes(p) == read_bytes(dir / "again.safetensors")));
  BOOST_TEST(dir.temp_files().empty());
}

BOOST_AUTO_TEST_CASE(zero_copy_views) {
  TmpDir dir;
  // Odd-sized small tensors first in insertion order: the writer's layout still aligns everything.
  const std::vector<std::uint8_t> u8 = {1, 2, 3};
  const std::vector<bf16> b = {bf16(1.0f)};
  std::vector<float> x(37);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.5f * static_cast<float>(i) - 3.0f;
  const std::vector<double> d = {1.0, 2.0, 3.0};
  SafetensorsWriter w;
  w.add("u8", {3}, u8.data()).add("b", {1}, b.data()).add("x", {37}, x.data()).add("d", {3}, d.data());
  w.write(dir / "v.safetensors");
  const SafetensorsFile f(dir / "v.safetensors");
  for (const auto& t : f.tensors())
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(f.raw(t.name).data()) % io::safetensors_dtype_size(t.dtype) == 0u);

  const auto v = f.view<float>("x");
  BOOST_TEST(static_cast<const void*>(v.data()) == static_cast<const void*>(f.raw("x").data()));  // no copy
  BOOST_TEST(reinterpret_cast<std::uintptr_t>(v.data()) % alignof(float) == 0u);
  BOOST_TEST(bitwise_equal(v, x));
  CHECK_IO_ERROR(f.view<double>("x"), "tensor 'x'", "dtype F32", "view<double>", "read<double>");
  CHECK_IO_ERROR(f.view<std::int32_t>("x"), "F32", "needs dtype I32");

  // A hand-made file whose F32 tensor starts at an odd offset: view refuses, read copies.
  const float val = 2.5f;
  std::string data(1, '\x07');
  data.append(reinterpret_cast<const char*>(&val), 4);
  write_raw_file(dir / "odd.safetensors",
                 R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})",
                 data);
  const SafetensorsFile odd(dir / "odd.safetensors");
  if (odd.data_offset() % 4 == 0)  // the header above is not padded, so the data is misaligned
    CHECK_IO_ERROR(odd.view<float>("f"), "tensor 'f'", "not a multiple of 4", "read<float>");
  BOOST_TEST(odd.read<float>("f")[0] == 2.5f);
  BOOST_TEST(odd.read<double>("f")[0] == 2.5);
}

BOOST_AUTO_TEST_CASE(read_with_conversion) {
  TmpDir dir;
  const std::vector<bf16> b = {bf16(1.0f), bf16(-0.5f), bf16(3.14159265f), bf16(1e-3f), bf16(kInf)};
  // binary16 bit patterns and their exact values.
  const std::vector<std::uint16_t> h = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x3555};
  const std::vector<float> hv = {1.0f, -2.0f, std::ldexp(1.0f, -24), 1023 * std::ldexp(1.0f, -24), std::ldexp(1.0f, -14),
                                 65504.0f, kInf, -kInf, -0.0f, 0.333251953125f};
  const std::uint16_t nan16 = 0x7e00;
  const std::vector<double> d = {0.1, 1e300, 1e-50, -2.5};
  const std::vector<float> f = {0.1f, -1e30f, 1e-40f};
  const std::vector<std::int32_t> i32 = {-5, 2147483647};
  const std::vector<std::int64_t> i64 = {5, std::int64_t{1} << 40};
  const std::vector<std::uint8_t> boolean = {1, 0, 2};
  SafetensorsWriter w;
  w.add("b", {5}, b.data())
      .add_raw("h", SafetensorsDType::f16, {10}, h.data())
      .add_raw("nan", SafetensorsDType::f16, {1}, &nan16)
      .add("d", {4}, d.data())
      .add("f", {3}, f.data())
      .add("i32", {2}, i32.data())
      .add("i64", {2}, i64.data())
      .add_raw("mask", SafetensorsDType::boolean, {3}, boolean.data());
  w.write(dir / "c.safetensors");
  const SafetensorsFile file(dir / "c.safetensors");

  const auto bf = file.read<float>("b");  // BF16 → float is exact
  for (std::size_t i = 0; i < b.size(); ++i) BOOST_TEST(bf[i] == static_cast<float>(b[i]));
  BOOST_TEST(bf[2] == 3.140625f);
  BOOST_TEST(file.read<double>("b")[1] == -0.5);

  const auto hf = file.read<float>("h");  // F16 → float is exact, subnormals and infinities included
  for (std::size_t i = 0; i < h.size(); ++i)
    BOOST_TEST(std::memcmp(&hf[i], &hv[i], 4) == 0, "F16 0x" << std::hex << h[i] << " -> " << hf[i] << ", expected " << hv[i]);
  BOOST_TEST(file.read<double>("h")[3] == 1023 * std::ldexp(1.0, -24));
  BOOST_TEST(std::isnan(file.read<float>("nan")[0]));
  for (std::uint32_t bits = 0; bits < 0x10000u; ++bits) {  // every finite half: bf16 ⊂ f32, compare via double
    const float v = io::f16_to_float(static_cast<std::uint16_t>(bits));
    const std::uint32_t e = (bits >> 10) & 0x1f, m = bits & 0x3ff;
    if (e == 31) continue;
    const double expect = (bits & 0x8000 ? -1.0 : 1.0) * (e ? std::ldexp(1.0 + m / 1024.0, static_cast<int>(e) - 15)
                                                            : std::ldexp(m / 1024.0, -14));
    if (static_cast<double>(v) != expect) {
      BOOST_ERROR("f16_to_float(0x" << std::hex << bits << ") = " << v << ", expected " << expect);
      break;
    }
  }

  const auto df = file.read<float>("d");  // F64 → float rounds to nearest
  BOOST_TEST(df[0] == 0.1f);
  BOOST_TEST(df[1] == kInf);
  BOOST_TEST(df[2] == 0.0f);
  BOOST_TEST(df[3] == -2.5f);
  const auto fd = file.read<double>("f");  // F32 → double is exact
  for (std::size_t i = 0; i < f.size(); ++i) BOOST_TEST(fd[i] == static_cast<double>(f[i]));

  BOOST_TEST(file.read<std::int64_t>("i32") == std::vector<std::int64_t>({-5, 2147483647}), boost::test_tools::per_element());
  CHECK_IO_ERROR(file.read<std::int32_t>("i64"), "tensor 'i64'", "element 1 = 1099511627776", "does not fit in std::int32_t");
  CHECK_IO_ERROR(file.read<std::uint8_t>("i32"), "element 0 = -5", "std::uint8_t");
  BOOST_TEST(file.read<std::int64_t>("mask") == std::vector<std::int64_t>({1, 0, 1}), boost::test_tools::per_element());
  BOOST_TEST(file.read<std::uint8_t>("mask") == std::vector<std::uint8_t>({1, 0, 1}), boost::test_tools::per_element());

  CHECK_IO_ERROR(file.read<float>("i64"), "tensor 'i64'", "dtype I64", "cannot be read as float", "std::int64_t");
  CHECK_IO_ERROR(file.read<std::int64_t>("f"), "dtype F32", "cannot be read as std::int64_t", "float or double");
  CHECK_IO_ERROR(file.read<bf16>("f"), "dtype F32", "cannot be read as jepa::bf16");
  std::vector<float> buf(5);
  CHECK_IO_ERROR(file.read<float>("f", buf.data(), buf.size()), "tensor 'f'", "has 3 elements", "expects 5");
  CHECK_IO_ERROR(file.read<float>("dd"), "has no tensor named 'dd'", "closest: 'd'", "c.safetensors");
  CHECK_IO_ERROR(file.info("i6"), "no tensor named 'i6'", "'i64'", "'i32'");
}

BOOST_AUTO_TEST_CASE(model_parameters_round_trip) {
  namespace presets = models::presets;
  TmpDir dir;
  const presets::VJepa2Encoder<presets::vit_tiny> enc(presets::config(presets::vit_tiny));
  const nn::ParamLayout& layout = enc.layout();
  nn::ParameterSet<float> P(layout);
  P.init(1);
  const fs::path p = dir / "vit_tiny.safetensors";
  io::write_params(p, layout, P.data(), "", {{"model", "vjepa2_vit_tiny"}});

  nn::ParameterSet<float> Q(layout);
  const io::LoadReport rep = io::read_params(p, layout, Q.data());
  BOOST_TEST(rep.loaded == layout.params().size());
  BOOST_TEST(rep.missing.empty());
  BOOST_TEST(rep.unexpected.empty());
  BOOST_TEST(std::memcmp(P.data(), Q.data(), layout.numel() * sizeof(float)) == 0);

  const SafetensorsFile f(p);
  BOOST_TEST(f.size() == layout.params().size());
  BOOST_TEST(f.metadata().at("model") == "vjepa2_vit_tiny");
  BOOST_TEST((f.info("blocks.0.attn.qkv.weight").shape == Shape{576, 192}));
  std::size_t scalars = 0;
  for (const auto& t : f.tensors()) scalars += t.numel();
  BOOST_TEST(scalars == layout.count());
  BOOST_TEST(bitwise_equal(f.view<float>("blocks.11.mlp.fc2.weight").data(), P["blocks.11.mlp.fc2.weight"],
                           layout.find("blocks.11.mlp.fc2.weight").numel()));

  // The same file loads into a double model (F32 → double, exact).
  nn::ParameterSet<double> D(layout);
  f.read_into(layout, D.data());
  const auto& last = layout.params().back();
  for (std::size_t j = 0; j < last.numel(); ++j)
    BOOST_TEST(D.data()[last.offset + j] == static_cast<double>(P.data()[last.offset + j]));
}

BOOST_AUTO_TEST_CASE(read_into_options_and_optimizer_state) {
  TmpDir dir;
  nn::ParamLayout L;
  L.add("a.weight", {3, 4}, nn::Init::normal, 1.0);
  L.add("a.bias", {4}, nn::Init::normal, 1.0);
  L.add("norm.weight", {4}, nn::Init::ones);
  nn::ParameterSet<double> P(L), M(L);
  P.init(3);
  M.init(4);
  const std::vector<float> extra = {1, 2};
  SafetensorsWriter w;
  w.add_params(L, P.data(), "encoder.")
      .add_params(L, M.data(), "adam.m.encoder.")
      .add("encoder.extra", {2}, extra.data())
      .add_scalar<std::int64_t>("step", 7)
      .set_metadata("jepa.kind", "checkpoint");
  w.write(dir / "ckpt.safetensors");
  const SafetensorsFile f(dir / "ckpt.safetensors");
  BOOST_TEST((f.info("encoder.a.weight").dtype == SafetensorsDType::f64));

  // Prefix; keys outside it are not "unexpected"; extra keys under it are reported.
  nn::ParameterSet<float> Q(L);
  io::LoadOptions opt;
  opt.prefix = "encoder.";
  const io::LoadReport rep = f.read_into(L, Q.data(), opt);
  BOOST_TEST(rep.loaded == 3u);
  BOOST_TEST(rep.missing.empty());
  BOOST_TEST(rep.unexpected == std::vector<std::string>{"encoder.extra"}, boost::test_tools::per_element());
  for (const auto& p : L.params())
    for (std::size_t j = 0; j < p.numel(); ++j) BOOST_TEST(Q.data()[p.offset + j] == static_cast<float>(P.data()[p.offset + j]));

  // Optimizer moments under their own prefix, bitwise.
  nn::ParameterSet<double> M2(L);
  opt.prefix = "adam.m.encoder.";
  BOOST_TEST(f.read_into(L, M2.data(), opt).unexpected.empty());
  BOOST_TEST(std::memcmp(M.data(), M2.data(), L.numel() * sizeof(double)) == 0);
  BOOST_TEST(f.read<std::int64_t>("step")[0] == 7);

  // strict: unexpected keys are an error.
  opt.prefix = "encoder.";
  opt.strict = true;
  CHECK_IO_ERROR(f.read_into(L, Q.data(), opt), "ckpt.safetensors", "1 key(s) under prefix 'encoder.'", "'encoder.extra'",
                 "another model", "a strict load forbids unexpected keys", "LoadOptions::strict in C++");

  // A wrong prefix: the message says which one would work.
  // Worded for command-line users too: the setting, then the C++ name of it.
  CHECK_IO_ERROR(f.read_into(L, Q.data()), "lacks 3 parameter(s)", "'a.weight'", "keys start with 'encoder.'",
                 "set the key prefix to \"encoder.\"", "LoadOptions::prefix = \"encoder.\" in C++");

  // Missing parameters: an error naming them, unless allowed (then left untouched and reported).
  nn::ParamLayout L2 = L;
  L2.add("mask_token", {1, 1, 4}, nn::Init::zeros);
  nn::ParameterSet<float> R(L2);
  float* mask = R["mask_token"];
  for (int j = 0; j < 4; ++j) mask[j] = 42.0f;
  io::LoadOptions o2;
  o2.prefix = "encoder.";
  CHECK_IO_ERROR(f.read_into(L2, R.data(), o2), "lacks 1 parameter(s)", "'encoder.mask_token'", "allow_missing");
  o2.allow_missing = {"mask_*"};
  const auto rep2 = f.read_into(L2, R.data(), o2);
  BOOST_TEST(rep2.loaded == 3u);
  BOOST_TEST(rep2.missing == std::vector<std::string>{"encoder.mask_token"}, boost::test_tools::per_element());
  BOOST_TEST(mask[0] == 42.0f);
  o2.allow_missing = {"mask_token"};
  BOOST_TEST(f.read_into(L2, R.data(), o2).loaded == 3u);
  o2.allow_missing.clear();
  o2.allow_any_missing = true;
  BOOST_TEST(f.read_into(L2, R.data(), o2).missing.size() == 1u);

  // Wrong shape: names the key and both shapes; nothing is written (validation precedes copying).
  nn::ParamLayout L3;
  L3.add("norm.weight", {4}, nn::Init::ones);
  L3.add("a.weight", {4, 3}, nn::Init::zeros);
  nn::ParameterSet<float> S(L3);
  S.data()[0] = -1.0f;
  CHECK_IO_ERROR(f.read_into(L3, S.data(), opt), "tensor 'encoder.a.weight'", "[3, 4] in the file", "'a.weight' has shape [4, 3]");
  BOOST_TEST(S.data()[0] == -1.0f);

  // A parameter stored with a non-float dtype.
  nn::ParamLayout L4;
  L4.add("step", {}, nn::Init::zeros);
  nn::ParameterSet<float> T4(L4);
  CHECK_IO_ERROR(f.read_into(L4, T4.data()), "tensor 'step'", "dtype I64", "parameter 'step'",
                 "parameters load from F32, F64, BF16 or F16");
}

BOOST_AUTO_TEST_CASE(move_keeps_views_valid) {
  TmpDir dir;
  const std::vector<float> x = {1, 2, 3};
  SafetensorsWriter().add("x", {3}, x.data()).write(dir / "m.safetensors");
  SafetensorsWriter().add("y", {3}, x.data()).write(dir / "n.safetensors");
  SafetensorsFile a(dir / "m.safetensors");
  const auto v = a.view<float>("x");
  SafetensorsFile b(std::move(a));
  BOOST_TEST(b.view<float>("x").data() == v.data());
  BOOST_TEST(bitwise_equal(v, x));
  SafetensorsFile c(dir / "n.safetensors");
  c = std::move(b);
  BOOST_TEST(c.contains("x"));
  BOOST_TEST(bitwise_equal(v, x));
}

// ------------------------------------------------------------------------------------------------
// Interop with Python's safetensors
// ------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(reads_file_written_by_python_safetensors) {
  const fs::path p = fs::path(JEPA_FIXTURE_DIR) / "safetensors" / "small.safetensors";
  BOOST_REQUIRE_MESSAGE(fs::exists(p), "missing fixture " << p << " (regenerate with tools/make_safetensors_fixture.py)");
  const SafetensorsFile f(p);
  std::vector<std::string> keys = f.keys();
  std::sort(keys.begin(), keys.end());
  const std::vector<std::string> expect = {"bf16", "blocks.0.attn.qkv.weight", "empty", "f16", "f32", "f64", "i16",
                                           "i32",  "i64", "i8", "mask", "scalar", "u8"};
  BOOST_TEST(keys == expect, boost::test_tools::per_element());
  BOOST_TEST(f.metadata().at("format") == "np");
  BOOST_TEST(f.metadata().at("producer") == "tools/make_safetensors_fixture.py");
  for (const auto& t : f.tensors())  // the official writer aligns too
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(f.raw(t.name).data()) % io::safetensors_dtype_size(t.dtype) == 0u);

  BOOST_TEST((f.info("f32").shape == Shape{2, 3}));
  BOOST_TEST(bitwise_equal(f.view<float>("f32"), std::vector<float>{-1.5f, 0.0f, 0.25f, 3.0f, 1e-3f, -65504.0f}));
  BOOST_TEST(bitwise_equal(f.view<double>("f64"), std::vector<double>{0.1, -2.5, 1e300}));
  BOOST_TEST((f.info("f16").dtype == SafetensorsDType::f16));
  const std::vector<float> f16 = {1.0f, -2.0f, 0.333251953125f, 65504.0f, std::ldexp(1.0f, -24), -kInf, std::ldexp(1.0f, -14), -0.0f};
  BOOST_TEST(bitwise_equal(std::span<const float>(f.read<float>("f16")), f16));
  BOOST_TEST((f.info("bf16").dtype == SafetensorsDType::bf16));
  const std::vector<float> b16 = {1.0f, -0.5f, 3.140625f, 0.00099945068359375f, kInf};
  BOOST_TEST(bitwise_equal(std::span<const float>(f.read<float>("bf16")), b16));
  BOOST_TEST((f.info("i64").shape == Shape{2, 2}));
  BOOST_TEST(bitwise_equal(f.view<std::int64_t>("i64"),
                           std::vector<std::int64_t>{-(std::int64_t{1} << 40), 7, 0, std::int64_t{1} << 62}));
  BOOST_TEST(bitwise_equal(std::span<const std::int32_t>(f.read<std::int32_t>("i32")),
                           std::vector<std::int32_t>{std::numeric_limits<std::int32_t>::min(), 0,
                                                     std::numeric_limits<std::int32_t>::max()}));
  BOOST_TEST(bitwise_equal(f.view<std::int16_t>("i16"), std::vector<std::int16_t>{-32768, 32767}));
  BOOST_TEST(bitwise_equal(f.view<std::int8_t>("i8"), std::vector<std::int8_t>{-128, 127}));
  BOOST_TEST(bitwise_equal(f.view<std::uint8_t>("u8"), std::vector<std::uint8_t>{0, 1, 128, 255}));
  BOOST_TEST((f.info("mask").dtype == SafetensorsDType::boolean));
  BOOST_TEST(f.read<std::uint8_t>("mask") == std::vector<std::uint8_t>({1, 0, 1}), boost::test_tools::per_element());
  BOOST_TEST((f.info("blocks.0.attn.qkv.weight").shape == Shape{2, 2, 2}));
  BOOST_TEST(bitwise_equal(f.view<float>("blocks.0.attn.qkv.weight"),
                           std::vector<float>{0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 3.5f}));
  BOOST_TEST(f.info("scalar").shape.rank() == 0u);
  BOOST_TEST(f.read<float>("scalar")[0] == 42.0f);
  BOOST_TEST((f.info("empty").shape == Shape{0, 4}));
  BOOST_TEST(f.info("empty").numel() == 0u);
}

// ------------------------------------------------------------------------------------------------
// Corruption: every malformed file is one IoError that names the file, the key and the rule
// ------------------------------------------------------------------------------------------------

namespace {

/// A valid reference file: a (F32 [2,3]), b (BF16 [3]), c (I64 [2]); 48 data bytes.
std::string valid_file_bytes(const TmpDir& dir) {
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<bf16> b = {bf16(1.0f), bf16(2.0f), bf16(3.0f)};
  const std::vector<std::int64_t> c = {-1, 1};
  const std::vector<std::uint8_t> u = {9, 8, 7};
  const std::uint16_t h[2] = {0x3c00, 0x4000};
  SafetensorsWriter w;
  w.add("a", {2, 3}, a.data()).add("b", {3}, b.data()).add("c", {2}, c.data());
  w.add_raw("u", SafetensorsDType::u8, {3}, u.data()).add_raw("h", SafetensorsDType::f16, {2}, h);
  w.set_metadata("format", "pt");
  w.write(dir / "valid.safetensors");
  return read_bytes(dir / "valid.safetensors");
}

}  // namespace

BOOST_AUTO_TEST_CASE(corrupt_truncated_files) {
  TmpDir dir;
  const std::string good = valid_file_bytes(dir);
  const SafetensorsFile ok(dir / "valid.safetensors");
  const std::string last = ok.keys().back();
  const fs::path p = dir / "bad.safetensors";

  write_bytes(p, good.substr(0, good.size() - 2));  // cut in the data section
  CHECK_IO_ERROR(SafetensorsFile(p), "bad.safetensors", "tensor '" + last + "'", "ends at byte", "but the data section has",
                 "truncated file?");
  write_bytes(p, good.substr(0, 8 + ok.header_size() / 2));  // cut in the header
  CHECK_IO_ERROR(SafetensorsFile(p), "bad.safetensors", "header length field says", "follow it", "truncated file");
  write_bytes(p, good.substr(0, 5));  // shorter than the length field
  CHECK_IO_ERROR(SafetensorsFile(p), "bad.safetensors", "has only 5 bytes", "8-byte");
  write_bytes(p, "");
  CHECK_IO_ERROR(SafetensorsFile(p), "bad.safetensors", "is empty (0 bytes)");

  std::string longer = good;  // length field larger than the file
  const std::string n = u64_le(good.size());
  longer.replace(0, 8, n);
  write_bytes(p, longer);
  CHECK_IO_ERROR(SafetensorsFile(p), "header length field says " + std::to_string(good.size()) + " bytes", "only");
  write_bytes(p, u64_le(~std::uint64_t{0}) + "{}");
  CHECK_IO_ERROR(SafetensorsFile(p), "header length field says 18446744073709551615 bytes");

  // A header length over the 100 MB limit, inside a (sparse) file large enough to hold it.
  {
    write_bytes(p, u64_le(150'000'000) + "{}");
    fs::resize_file(p, 160'000'000);
    CHECK_IO_ERROR(SafetensorsFile(p), "150000000 bytes, more than the 100000000 allowed");
  }
}

BOOST_AUTO_TEST_CASE(corrupt_headers) {
  TmpDir dir;
  const fs::path p = dir / "bad.safetensors";
  const std::string d24(24, '\0');
  const auto check = [&](const std::string& header, const std::string& data, std::initializer_list<std::string_view> words) {
    write_raw_file(p, header, data);
    BOOST_TEST_CONTEXT("header " << io::detail::printable(header)) {
      const std::string msg = io_error_message([&] { SafetensorsFile f(p); });
      check_words(msg, words);
      check_words(msg, {"jepa: safetensors file '", p.string()});
      BOOST_TEST(io::detail::printable(msg, msg.size()) == msg);  // printable UTF-8, whatever the file holds
    }
  };
  check(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})", d24, {"not valid UTF-8 JSON", "parse error"});
  check("", "", {"not valid UTF-8 JSON"});
  check("\xff\xfe{}", "", {"not valid UTF-8 JSON"});
  check("{\"a\":\"\xff\"}", "", {"not valid UTF-8 JSON", "invalid string"});
  check(R"([1,2])", "", {"must be a JSON object", "found a JSON array"});
  check(R"(7)", "", {"must be a JSON object", "number"});
  check(R"({"a":{"dtype":"Q7","shape":[2,3],"data_offsets":[0,24]}})", d24,
        {"tensor 'a'", "unknown dtype \"Q7\"", "allowed: BOOL, U8", "F32", "BF16", "F16"});
  check(R"({"a":{"dtype":"f32","shape":[2,3],"data_offsets":[0,24]}})", d24, {"unknown dtype \"f32\""});
  check(R"({"a":{"dtype":5,"shape":[2,3],"data_offsets":[0,24]}})", d24, {"tensor 'a'", "string field \"dtype\"", "number"});
  check(R"({"a":{"shape":[2,3],"data_offsets":[0,24]}})", d24, {"tensor 'a'", "string field \"dtype\""});
  check(R"({"a":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]}})", d24,
        {"tensor 'a'", "dtype F32 and shape [2, 4]", "32 bytes", "span 24 bytes", "numel x dtype size"});
  check(R"({"a":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]}})", d24,
        {"tensor 'a'", "entry 1 (-3) is negative", "integers >= 0"});
  check(R"({"a":{"dtype":"F32","shape":[2,3.0],"data_offsets":[0,24]}})", d24, {"tensor 'a'", "not an integer"});
  check(R"({"a":{"dtype":"F32","shape":["2",3],"data_offsets":[0,24]}})", d24, {"tensor 'a'", "not an integer"});
  check(R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,24]}})", d24, {"too large"});
  check(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,24]}})", d24, {"more bytes than fit in 64 bits"});
  check(R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,24]}})", d24, {"more bytes than fit in 64 bits"});
  check(R"({"a":{"dtype":"F32","shape":{"x":1},"data_offsets":[0,24]}})", d24, {"array field \"shape\"", "object"});
  check(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0]}})", d24, {"\"data_offsets\": [begin, end]"});
  check(R"({"a":{"dtype":"F32","shape":[2,3]}})", d24, {"\"data_offsets\""});
  check(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[-8,16]}})", d24, {"offsets must be integers >= 0"});
  check(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}})", d24, {"begin > end"});
  check(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]}})", d24,
        {"tensor 'a'", "ends at byte 32 but the data section has 24 bytes", "truncated file?"});
  check(R"({"a":[1,2]})", "", {"tensor 'a'", "must be an object", "array"});
  // Layout of the data section.
  check(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
        std::string(16, '\0'), {"tensor 'b' (bytes [8, 16)) overlaps tensor 'a' (bytes [0, 16))", "must not overlap"});
  check(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
        std::string(8, '\0'), {"overlaps", "'a'", "'b'"});
  check(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
        std::string(20, '\0'), {"bytes [8, 12) of the data section belong to no tensor", "between tensor 'a' and tensor 'b'",
                                "without holes"});
  check(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0'),
        {"bytes [0, 4)", "before tensor 'b'"});
  check(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(11, '\0'),
        {"data section has 11 bytes", "cover only the first 8", "3 bytes after tensor 'a'"});
  check(R"({})", "xyz", {"3 bytes after the header belong to no tensor"});
  check(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
        std::string(16, '\0'), {"names 'a' more than once"});
  // Metadata.
  check(R"({"__metadata__":{"k":1}})", "", {"\"__metadata__\" entry 'k'", "number", "must be strings"});
  check(R"({"__metadata__":["k"]})", "", {"\"__metadata__\" must be an object"});
  check(R"({"__metadata__":{"k":"v"},"__metadata__":{"k":"w"}})", "", {"names '__metadata__' more than once"});

  // Valid corner cases: empty header object, null metadata, padding, extra fields, zero-size tensors.
  write_raw_file(p, R"({})", "");
  BOOST_TEST(SafetensorsFile(p).size() == 0u);
  write_raw_file(p,
                 R"({"__metadata__":null,"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                 R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"note":"x"},"y":{"dtype":"I64","shape":[3,0],"data_offsets":[2,2]}}    )",
                 "ab");
  const SafetensorsFile f(p);
  BOOST_TEST(f.keys() == std::vector<std::string>({"z", "a", "y"}), boost::test_tools::per_element());
  BOOST_TEST(f.metadata().empty());

  // Deeply nested JSON is rejected early.
  check("{\"a\":" + std::string(200000, '[') + std::string(200000, ']') + "}", "", {"more than 16 levels deep"});
  check(R"({"a":{"dtype":"F32","shape":[[[[[[[[[[[[[[[[[[2]]]]]]]]]]]]]]]]],"data_offsets":[0,8]}})", "", {"levels deep"});
  check(R"({"a":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})", "", {"tensor 'a'", "not an integer"});
}

BOOST_AUTO_TEST_CASE(not_a_file) {
  TmpDir dir;
  CHECK_IO_ERROR(SafetensorsFile(dir / "nope.safetensors"), (dir / "nope.safetensors").string(), "cannot be opened",
                 "No such file or directory");
  CHECK_IO_ERROR(SafetensorsFile(dir.path), dir.path.string(), "is a directory, not a file");
  const fs::path fifo = dir / "fifo";
  if (::mkfifo(fifo.c_str(), 0600) == 0) CHECK_IO_ERROR(SafetensorsFile(fifo), "is not a regular file");
}

// ------------------------------------------------------------------------------------------------
// Fuzz: mutated files either open with consistent data or throw IoError
// ------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fuzz_mutated_files) {
  TmpDir dir;
  std::vector<std::string> bases = {valid_file_bytes(dir)};
  const fs::path fixture = fs::path(JEPA_FIXTURE_DIR) / "safetensors" / "small.safetensors";
  if (fs::exists(fixture)) bases.push_back(read_bytes(fixture));
  const std::string json_chars = "{}[]\",:0123456789-+.eE \\ntfalsu";
  const fs::path p = dir / "fuzz.safetensors";
  int opened = 0, rejected = 0;
  constexpr int kVariants = 600;
  for (int v = 0; v < kVariants; ++v) {
    Rng r(20240601, static_cast<std::uint64_t>(v));
    std::string s = bases[static_cast<std::size_t>(v) % bases.size()];
    std::uint64_t hlen;
    std::memcpy(&hlen, s.data(), 8);
    const auto header_pos = [&] { return 8 + r.uniform_int(static_cast<std::uint32_t>(hlen)); };
    const auto any_pos = [&] { return r.uniform_int(static_cast<std::uint32_t>(s.size())); };
    const int kind = static_cast<int>(r.uniform_int(8));
    const int count = 1 + static_cast<int>(r.uniform_int(4));
    switch (kind) {
      case 0:  // flip bits anywhere
        for (int i = 0; i < count; ++i) s[any_pos()] ^= static_cast<char>(1u << r.uniform_int(8));
        break;
      case 1:  // JSON-ish characters into the header
        for (int i = 0; i < count; ++i) s[header_pos()] = json_chars[r.uniform_int(static_cast<std::uint32_t>(json_chars.size()))];
        break;
      case 2:  // truncate
        s.resize(r.uniform_int(static_cast<std::uint32_t>(s.size())));
        break;
      case 3: {  // perturb the length field
        const std::int64_t delta = static_cast<std::int64_t>(r.uniform_int(33)) - 16;
        const std::uint64_t n = hlen + static_cast<std::uint64_t>(delta);
        std::memcpy(s.data(), &n, 8);
        break;
      }
      case 4:  // change digits of the header (shapes and offsets)
        for (int i = 0, done = 0; i < 200 && done < count; ++i) {
          const std::size_t at = header_pos();
          if (s[at] >= '0' && s[at] <= '9') {
            s[at] = static_cast<char>('0' + r.uniform_int(10));
            ++done;
          }
        }
        break;
      case 5:  // random bytes into the header, then truncate
        for (int i = 0; i < count; ++i) s[header_pos()] = static_cast<char>(r.uniform_int(256));
        s.resize(s.size() - r.uniform_int(static_cast<std::uint32_t>(s.size() / 4 + 1)));
        break;
      case 6:  // append garbage
        for (int i = 0; i < count * 3; ++i) s.push_back(static_cast<char>(r.uniform_int(256)));
        break;
      default:  // random bytes in the data section only: opens, with other values (NaN, huge U64, ...)
        for (int i = 0; i < count * 4 && s.size() > 8 + hlen; ++i)
          s[8 + hlen + r.uniform_int(static_cast<std::uint32_t>(s.size() - 8 - hlen))] = static_cast<char>(r.uniform_int(256));
        break;
    }
    write_bytes(p, s);
    try {
      const SafetensorsFile f(p);
      ++opened;
      // Consistency: contiguous coverage of the data section, readable contents.
      std::size_t pos = 0;
      for (const auto& t : f.tensors()) {
        BOOST_REQUIRE(t.begin == pos);
        BOOST_REQUIRE(t.bytes() == t.numel() * io::safetensors_dtype_size(t.dtype));
        pos = t.end;
        BOOST_REQUIRE(f.raw(t.name).size() == t.bytes());
        try {
          if (t.dtype == SafetensorsDType::f32 || t.dtype == SafetensorsDType::f64 || t.dtype == SafetensorsDType::bf16 ||
              t.dtype == SafetensorsDType::f16)
            (void)f.read<double>(t.name);
          else if (t.dtype != SafetensorsDType::f8_e4m3 && t.dtype != SafetensorsDType::f8_e5m2)
            (void)f.read<std::int64_t>(t.name);  // U64 values past 2^63 throw IoError
        } catch (const IoError&) {
        }
      }
      BOOST_REQUIRE(pos == f.data_size());
      BOOST_REQUIRE(f.data_offset() + f.data_size() == s.size());
    } catch (const IoError& e) {
      ++rejected;
      BOOST_REQUIRE(std::string(e.what()).find(p.string()) != std::string::npos);
    } catch (const std::exception& e) {
      BOOST_FAIL("variant " << v << " (kind " << kind << ") threw a non-IoError: " << e.what());
    }
  }
  BOOST_TEST_MESSAGE("fuzz: " << opened << " variants opened, " << rejected << " rejected");
  BOOST_TEST(opened + rejected == kVariants);
  BOOST_TEST(rejected > kVariants / 3);
  BOOST_TEST(opened > kVariants / 10);
}

// ------------------------------------------------------------------------------------------------
// Writer: validation and atomic replacement
// ------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(writer_rejects_bad_entries) {
  const std::vector<float> x = {1, 2};
  SafetensorsWriter w;
  w.add("x", {2}, x.data());
  CHECK_IO_ERROR(w.add("x", {2}, x.data()), "tensor 'x'", "added twice");
  CHECK_IO_ERROR(w.add("__metadata__", {2}, x.data()), "reserved name", "set_metadata");
  CHECK_IO_ERROR(w.add("n", {2, -1}, x.data()), "tensor 'n'", "negative extent");
  CHECK_IO_ERROR(w.add<float>("z", {2}, nullptr), "tensor 'z'", "null pointer");
  CHECK_IO_ERROR(w.add_copy("c", {3}, x), "tensor 'c'", "shape [3]", "2 values");
  CHECK_IO_ERROR(w.add("bad\xff", {2}, x.data()), "not valid UTF-8");
  CHECK_IO_ERROR(w.set_metadata("k", "\xc3"), "metadata value", "not valid UTF-8");
  CHECK_IO_ERROR(w.add("huge", {std::int64_t{1} << 40, std::int64_t{1} << 40}, x.data()), "tensor 'huge'", "more");
  BOOST_TEST(w.size() == 1u);
  BOOST_TEST(w.contains("x"));
}

BOOST_AUTO_TEST_CASE(atomic_write_keeps_old_file_on_failure) {
  TmpDir dir;
  const fs::path p = dir / "ckpt.safetensors";
  const std::vector<float> old_vals = {1, 2, 3};
  SafetensorsWriter().add("w", {3}, old_vals.data()).write(p);
  const std::string old_bytes = read_bytes(p);

  // Overwriting succeeds and replaces the file.
  const std::vector<float> new_vals = {4, 5, 6, 7};
  SafetensorsWriter().add("w", {4}, new_vals.data()).write(p);
  BOOST_TEST(bitwise_equal(SafetensorsFile(p).view<float>("w"), new_vals));
  SafetensorsWriter().add("w", {3}, old_vals.data()).write(p);
  BOOST_TEST((read_bytes(p) == old_bytes));

  // A write that fails midway (the file size limit makes write() fail with EFBIG after 64 KiB).
  const std::vector<float> big(64 * 1024, 0.5f);  // 256 KiB
  SafetensorsWriter bw;
  bw.add("w", {static_cast<index_t>(big.size())}, big.data());
  std::string msg;
  {
    rlimit old_limit{};
    BOOST_REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    rlimit small = old_limit;
    small.rlim_cur = 64 * 1024;
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    BOOST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    try {
      bw.write(p);
    } catch (const IoError& e) {
      msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
  }
  check_words(msg, {"cannot write safetensors file '" + p.string() + "'", "writing the temporary file", "File too large",
                    "previous file", "unchanged"});
  BOOST_TEST((read_bytes(p) == old_bytes));
  BOOST_TEST(bitwise_equal(SafetensorsFile(p).view<float>("w"), old_vals));
  BOOST_TEST(dir.temp_files().empty());

  // The temporary file cannot be created (its name is taken by a directory).
  const fs::path blocker = p.string() + ".tmp." + std::to_string(::getpid());
  fs::create_directory(blocker);
  CHECK_IO_ERROR(bw.write(p), p.string(), "creating the temporary file", "Is a directory");
  fs::remove(blocker);
  BOOST_TEST((read_bytes(p) == old_bytes));
  BOOST_TEST(dir.temp_files().empty());

  // The target is a directory: the rename fails and the temporary file is removed.
  fs::create_directory(dir / "adir");
  CHECK_IO_ERROR(bw.write(dir / "adir"), (dir / "adir").string(), "renaming the temporary file", "Is a directory");
  BOOST_TEST(dir.temp_files().empty());

  // The directory does not exist.
  CHECK_IO_ERROR(bw.write(dir / "missing" / "x.safetensors"), (dir / "missing" / "x.safetensors").string(),
                 "No such file or directory");
}

// ------------------------------------------------------------------------------------------------
// Header parsing is linear in the number of tensors
// ------------------------------------------------------------------------------------------------

// 200,000 empty tensors (an 11 MB header) parse in ~0.3 s each. nlohmann's callback parser, used
// before, rescanned the top level after every tensor: 57 s for 100,000 on a 2-core AMD EPYC, about four
// minutes per parse at this size. The case's time limit (not an assertion on a measured time: a 50x
// margin) turns a return of the quadratic parse into a failure instead of a slow suite.
BOOST_AUTO_TEST_CASE(header_with_many_tensors_parses_in_linear_time, *boost::unit_test::timeout(60)) {
  TmpDir dir;
  constexpr int kTensors = 200'000;
  std::string h = "{";
  h.reserve(std::size_t{kTensors} * 60);
  for (int i = 0; i < kTensors; ++i)
    h.append(i ? ",\"t" : "\"t").append(std::to_string(i)).append(R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})");
  const std::string good = h + "}";
  write_raw_file(dir / "many.safetensors", good, "");
  const SafetensorsFile f(dir / "many.safetensors");
  BOOST_TEST(f.size() == std::size_t{kTensors});
  BOOST_TEST(f.keys().front() == "t0");
  BOOST_TEST(f.keys().back() == "t199999");  // empty tensors all start at 0: header order
  BOOST_TEST(f.info("t123456").numel() == 0u);

  // A name given twice is still refused, however far apart the two are.
  write_raw_file(dir / "dup.safetensors", h + R"(,"t17":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})", "");
  CHECK_IO_ERROR(SafetensorsFile(dir / "dup.safetensors"), "dup.safetensors", "names 't17' more than once",
                 "names must be unique");
}

// ------------------------------------------------------------------------------------------------
// Content hash (XXH64 of the data section)
// ------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(xxh64_matches_the_reference) {
  // Published values, and values of the reference implementation (libxxhash 0.8.1) on bytes 0..n-1 of
  // a std::mt19937_64(1) stream (low byte of each draw): every tail length and stripe boundary.
  BOOST_TEST(io::xxh64("", 0) == 0xef46db3751d8e999ull);
  BOOST_TEST(io::xxh64("abc", 3) == 0x44bc2cf5ad770999ull);
  std::mt19937_64 g(1);
  std::vector<unsigned char> buf(1000);
  for (auto& c : buf) c = static_cast<unsigned char>(g() & 0xff);
  const std::pair<std::size_t, std::uint64_t> ref[] = {
      {1, 0x1f389510b857f10full},   {3, 0x6b8440f7175b3e2cull},   {4, 0x64101b6fa367b94cull},
      {7, 0x832d07651585aaa3ull},   {8, 0xe214ab8266f4b9a7ull},   {31, 0xe3066cc720f0d017ull},
      {32, 0xa1f189e79a53ae91ull},  {33, 0xd681f47d0cc09e8full},  {63, 0xa834a8f525adb31bull},
      {64, 0x970e67985071a730ull},  {999, 0x1de59f3c07aff380ull}, {1000, 0xb6669b721c41aee1ull}};
  for (const auto& [n, h] : ref) {
    BOOST_TEST_CONTEXT("n = " << n) {
      BOOST_TEST(io::xxh64(buf.data(), n) == h);
      io::Xxh64 s;  // the same bytes in pieces of 13
      for (std::size_t i = 0; i < n; i += 13) s.update(buf.data() + i, std::min<std::size_t>(13, n - i));
      BOOST_TEST(s.digest() == h);
    }
  }
  BOOST_TEST(io::xxh64(buf.data(), 100, 7) == 0x16d3a468e65bc597ull);  // seeded
  BOOST_TEST(io::xxh64_text(0x0123456789abcdefull) == "xxh64:0123456789abcdef");
}

BOOST_AUTO_TEST_CASE(content_hash_detects_a_flipped_bit) {
  TmpDir dir;
  std::vector<float> w(1000);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.25f;
  const std::vector<std::int64_t> step = {42};
  SafetensorsWriter sw;
  sw.add("w", {10, 100}, w.data()).add("step", {1}, step.data()).set_metadata("format", "ckpt").set_content_hash();
  BOOST_TEST(sw.content_hash_enabled());
  const fs::path p = dir / "hashed.safetensors";
  sw.write(p);
  {
    const SafetensorsFile f(p);
    const std::string& stored = f.metadata().at(std::string(io::kContentHashKey));
    BOOST_TEST(stored.starts_with("xxh64:"));
    BOOST_TEST(stored.size() == 6u + 16u);
    BOOST_TEST(f.metadata().at("format") == "ckpt");
    BOOST_TEST(f.verify_content_hash());
    BOOST_TEST((stored == io::xxh64_text(io::xxh64(read_bytes(p).data() + f.data_offset(), f.data_size()))));
    BOOST_TEST(sw.header().size() == f.header_size());  // header() and file_size() describe the file written
    BOOST_TEST(sw.file_size() == f.file_size());
  }
  const std::string good = read_bytes(p);
  sw.write(dir / "again.safetensors");
  BOOST_TEST((read_bytes(dir / "again.safetensors") == good));  // still a pure function of the content

  // One bit of one weight flipped: the file opens (the header is intact) but fails the check.
  std::string bad = good;
  const std::size_t data_offset = SafetensorsFile(p).data_offset();
  bad[data_offset + 1234] = static_cast<char>(bad[data_offset + 1234] ^ 0x10);
  write_bytes(dir / "flipped.safetensors", bad);
  const SafetensorsFile flipped(dir / "flipped.safetensors");
  CHECK_IO_ERROR(flipped.verify_content_hash(), "flipped.safetensors", "fails its content check", "hashes to xxh64:",
                 "records content_hash = " + flipped.metadata().at("content_hash"), "damaged after it was written");

  // No hash: nothing to check. A value of another form: an error, not a silent pass.
  SafetensorsWriter plain;
  plain.add("w", {10, 100}, w.data());
  plain.write(dir / "plain.safetensors");
  BOOST_TEST(!SafetensorsFile(dir / "plain.safetensors").verify_content_hash());
  BOOST_TEST(!SafetensorsFile(dir / "plain.safetensors").metadata().contains("content_hash"));
  plain.set_metadata("content_hash", "sha256:abc");
  plain.write(dir / "other.safetensors");
  CHECK_IO_ERROR(SafetensorsFile(dir / "other.safetensors").verify_content_hash(), "other.safetensors",
                 "content_hash = 'sha256:abc'", "not a content hash this reader knows", "'xxh64:' followed by 16 hex digits");
  // Enabled, the computed hash replaces a value set by hand; an empty data section hashes too.
  plain.set_content_hash();
  plain.write(dir / "other.safetensors");
  BOOST_TEST(SafetensorsFile(dir / "other.safetensors").verify_content_hash());
  SafetensorsWriter empty;
  empty.set_content_hash().write(dir / "empty.safetensors");
  BOOST_TEST(SafetensorsFile(dir / "empty.safetensors").metadata().at("content_hash") == "xxh64:ef46db3751d8e999");
  BOOST_TEST(SafetensorsFile(dir / "empty.safetensors").verify_content_hash());
}

// ------------------------------------------------------------------------------------------------
// Non-finite weights are refused at load
// ------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(non_finite_weights_are_refused) {
  TmpDir dir;
  nn::ParamLayout L;
  L.add("blocks.3.attn.qkv.weight", {3, 8}, nn::Init::normal, 1.0);
  L.add("norm.weight", {8}, nn::Init::ones);
  nn::ParameterSet<float> P(L), Q(L);
  P.init(1);
  Q.init(2);
  const std::vector<float> before(Q.data(), Q.data() + L.numel());
  const auto expect_unchanged = [&] { BOOST_TEST(bitwise_equal(Q.data(), before.data(), before.size())); };
  float* qkv = P["blocks.3.attn.qkv.weight"];

  const auto write_and_load = [&](const std::string& name) {
    io::write_params(dir / name, L, P.data(), "encoder.");
    io::LoadOptions o;
    o.prefix = "encoder.";
    return io_error_message([&] { (void)SafetensorsFile(dir / name).read_into(L, Q.data(), o); });
  };
  qkv[12] = std::numeric_limits<float>::quiet_NaN();
  check_words(write_and_load("nan.safetensors"),
              {"nan.safetensors", "tensor 'encoder.blocks.3.attn.qkv.weight'", "holds a non-finite value (NaN) at element 12",
               "index [1, 4] of shape [3, 8]", "the weights are corrupt or the training diverged"});
  expect_unchanged();  // refused before anything was written
  qkv[12] = 0.5f;
  qkv[23] = -kInf;
  check_words(write_and_load("inf.safetensors"), {"(-Inf) at element 23"});
  qkv[23] = 0.5f;
  P["norm.weight"][0] = kInf;
  check_words(write_and_load("inf1.safetensors"), {"tensor 'encoder.norm.weight'", "(+Inf) at element 0;"});
  expect_unchanged();
  P["norm.weight"][0] = 1.0f;
  io::write_params(dir / "ok.safetensors", L, P.data());
  BOOST_TEST(SafetensorsFile(dir / "ok.safetensors").read_into(L, Q.data()).loaded == 2u);
  BOOST_TEST(bitwise_equal(Q.data(), P.data(), L.numel()));

  // Every float dtype is scanned, double parameters and optimizer moments alike (read_into is the one
  // path for both); the raw read() still returns what the file holds.
  const std::vector<double> d = {1.0, 2.0, std::numeric_limits<double>::quiet_NaN()};
  const std::uint16_t bf[3] = {0x3f80, 0x7f80, 0x3f80};   // 1, +Inf, 1
  const std::uint16_t hf[3] = {0x3c00, 0x3c00, 0xfe00};   // 1, 1, NaN
  const std::uint16_t hf_ok[3] = {0x3c00, 0x7bff, 0x0001};  // 1, 65504, smallest subnormal
  SafetensorsWriter w;
  w.add("adam.v.x", {3}, d.data()).add_raw("bf", SafetensorsDType::bf16, {3}, bf);
  w.add_raw("hf", SafetensorsDType::f16, {3}, hf).add_raw("hf_ok", SafetensorsDType::f16, {3}, hf_ok);
  w.write(dir / "dtypes.safetensors");
  const SafetensorsFile f(dir / "dtypes.safetensors");
  BOOST_TEST(std::isnan(f.read<double>("adam.v.x")[2]));
  BOOST_TEST(f.find_non_finite("adam.v.x").value() == 2u);
  BOOST_TEST(f.find_non_finite("bf").value() == 1u);
  BOOST_TEST(f.find_non_finite("hf").value() == 2u);
  BOOST_TEST(!f.find_non_finite("hf_ok").has_value());
  BOOST_TEST(!f.find_non_finite("adam.v.x", 0, 2).has_value());  // a range: elements [0, 2)
  BOOST_TEST(!f.find_non_finite("bf", 2).has_value());         // [2, 3): finite
  f.require_finite("hf_ok");
  CHECK_IO_ERROR(f.require_finite("bf"), "tensor 'bf'", "(+Inf) at element 1");
  CHECK_IO_ERROR(f.require_finite("hf", 1), "tensor 'hf'", "(NaN) at element 2");
  CHECK_IO_ERROR(f.require_finite("hf", 2, 2), "tensor 'hf'", "elements [2, 2 + 2) lie outside it");
  nn::ParamLayout Lx;
  Lx.add("x", {3}, nn::Init::zeros);
  nn::ParameterSet<double> M(Lx);
  io::LoadOptions o;
  o.prefix = "adam.v.";
  CHECK_IO_ERROR(f.read_into(Lx, M.data(), o), "tensor 'adam.v.x'", "(NaN) at element 2");
  BOOST_TEST(M.data()[2] == 0.0);
}

// ------------------------------------------------------------------------------------------------
// A PyTorch checkpoint given as safetensors
// ------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(pytorch_checkpoint_is_named_as_such) {
  TmpDir dir;
  // torch.save since 1.6: a zip archive whose first entry is "<name>/data.pkl".
  std::string zip = "PK\x03\x04";
  zip += std::string("\x00\x00\x08\x00\x00\x00", 6) + std::string(16, '\0');  // version .. uncompressed size
  const std::string entry = "archive/data.pkl";
  zip += std::string(1, static_cast<char>(entry.size())) + std::string(3, '\0') + entry + std::string(64, 'x');
  write_bytes(dir / "vitl.pt", zip);
  CHECK_IO_ERROR(SafetensorsFile(dir / "vitl.pt"), "jepa: '" + (dir / "vitl.pt").string() + "' is a PyTorch checkpoint",
                 "(.pt, zip format), not safetensors",
                 "convert it once with `python3 tools/convert_checkpoint.py " + (dir / "vitl.pt").string() + " " +
                     (dir / "vitl.safetensors").string() + "`");
  write_bytes(dir / "probe.pth.tar", zip);
  CHECK_IO_ERROR(SafetensorsFile(dir / "probe.pth.tar"), (dir / "probe.safetensors").string() + "`");
  // Renamed to .safetensors; a path with a space is quoted for the shell.
  write_bytes(dir / "my model.safetensors", zip);
  CHECK_IO_ERROR(SafetensorsFile(dir / "my model.safetensors"), "PyTorch checkpoint",
                 "'" + (dir / "my model.converted.safetensors").string() + "'`");

  // torch.save before 1.6 (and with _use_new_zipfile_serialization=False): pickle protocol 2 and
  // the legacy magic number.
  const std::string legacy = std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14) + std::string(40, 'q');
  write_bytes(dir / "old.pth", legacy);
  CHECK_IO_ERROR(SafetensorsFile(dir / "old.pth"), "is a PyTorch checkpoint (.pt, legacy pickle format)",
                 "tools/convert_checkpoint.py");
  // Another zip or pickle: named, with the conversion as a conditional hint.
  write_bytes(dir / "x.npz", "PK\x03\x04" + std::string(26, '\0') + std::string(20, 'z'));
  CHECK_IO_ERROR(SafetensorsFile(dir / "x.npz"), "is a zip archive, not a safetensors file",
                 "if it is a PyTorch checkpoint (.pt, .pth), convert it once with `python3 tools/convert_checkpoint.py");
  write_bytes(dir / "p.pkl", std::string("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}", 12) + std::string(20, '.'));
  CHECK_IO_ERROR(SafetensorsFile(dir / "p.pkl"), "is a Python pickle, not a safetensors file");
  CHECK_IO_ERROR(SafetensorsFile::from_bytes(std::as_bytes(std::span(legacy)), "upload"), "'upload' is a PyTorch checkpoint");

  // A real safetensors file whose header length starts with the same bytes (640 = 0x0280 reads as
  // "\x80\x02") still opens.
  std::string h = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  h.append(640 - h.size(), ' ');
  write_raw_file(dir / "h640.safetensors", h, "ab");
  BOOST_TEST(read_bytes(dir / "h640.safetensors").substr(0, 2) == std::string("\x80\x02", 2));
  BOOST_TEST(SafetensorsFile(dir / "h640.safetensors").read<std::uint8_t>("a")[1] == 'b');
}
