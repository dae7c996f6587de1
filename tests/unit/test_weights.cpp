// Released weights (jepa/models/checkpoint_keys.hpp, jepa/models/inference.hpp) beyond parity:
// sections and prefixes, the Hugging Face translation, every error the loader promises (a missing key,
// a wrong shape naming the preset that fits, a wrong dtype, an unknown section, unexpected tensors),
// renames, convert → load → save → load identity, byte agreement between the Python converter and the
// C++ writer, and the inference API's input checks.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <fstream>
#include <unistd.h>

#include "jepa/io/npy.hpp"
#include "jepa/models/presets.hpp"
#include "support/errors.hpp"
#include "support/weights_fixtures.hpp"

using namespace jepa;
using namespace jepa::models;
using namespace jepa::test::weights;
namespace fs = std::filesystem;

namespace {

struct TmpDir {
  fs::path path;
  TmpDir() {
    static std::atomic<int> n{0};
    path = fs::temp_directory_path() / ("jepa_weights_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path operator/(const std::string& s) const { return path / s; }
};

std::string bytes_of(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

template <class F>
void expect_io(F&& f, std::initializer_list<std::string> words) {
  test::expect_error<IoError>(std::forward<F>(f), words);
}

/// A CheckpointSection with shapes only (describe_* reads shapes, never data).
CheckpointSection section_of(const std::vector<std::pair<std::string, Shape>>& shapes) {
  CheckpointSection s;
  for (const auto& [k, sh] : shapes) s.tensors[k] = CheckpointTensor{sh, {k}, -1};
  return s;
}
std::vector<std::pair<std::string, Shape>> encoder_shapes(index_t D, int depth, index_t mlp, Shape patch, bool final_norm,
                                                          int taps, bool image_tok) {
  std::vector<std::pair<std::string, Shape>> v{{"patch_embed.proj.weight", patch}, {"patch_embed.proj.bias", {D}}};
  for (int i = 0; i < depth; ++i) v.emplace_back("blocks." + std::to_string(i) + ".norm1.weight", Shape{D});
  v.emplace_back("blocks.0.mlp.fc1.weight", Shape{mlp, D});
  if (final_norm) v.emplace_back("norm.weight", Shape{D});
  for (int j = 0; j < taps; ++j) v.emplace_back("norms_block." + std::to_string(j) + ".weight", Shape{D});
  if (image_tok) v.emplace_back("patch_embed_img.proj.weight", Shape{D, 3, 1, 16, 16});
  return v;
}

bool has(const std::string& msg, const std::string& w) { return msg.find(w) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(sections_prefixes_and_metadata) {
  const Checkpoint ck(model_file("weights_vjepa2"));
  std::vector<std::string> names;
  for (const auto& s : ck.sections()) names.push_back(s.name);
  BOOST_TEST(names == std::vector<std::string>({"encoder", "predictor", "target_encoder"}), boost::test_tools::per_element());
  const auto* enc = ck.find_section("encoder");
  BOOST_REQUIRE(enc);
  BOOST_TEST(enc->tensors.at("blocks.0.attn.qkv.weight").keys[0] == "encoder.module.backbone.blocks.0.attn.qkv.weight");
  BOOST_TEST(enc->count_indexed("blocks.", ".norm1.weight") == 2);
  BOOST_TEST(ck.file().metadata().at("jepa.converter") == "tools/convert_checkpoint.py");
  BOOST_TEST(has(ck.section_list(), "'predictor' (40 tensors)"));

  // A bare state dict (keys straight from model.state_dict(), or a DDP one): section "".
  TmpDir d;
  const std::vector<float> w(4, 1.f);
  io::SafetensorsWriter wr;
  wr.add("module.blocks.0.norm1.weight", {4}, w.data()).add("step", {4}, w.data());
  wr.write(d / "bare.safetensors");
  const Checkpoint bare(d / "bare.safetensors");
  BOOST_REQUIRE_EQUAL(bare.sections().size(), 1u);
  BOOST_TEST(bare.sections()[0].name == "");
  BOOST_TEST(bare.sections()[0].has("blocks.0.norm1.weight"));
  BOOST_TEST(bare.other_keys() == std::vector<std::string>({"step"}), boost::test_tools::per_element());

  // Two keys that collide once the wrappers are removed are an error naming both.
  io::SafetensorsWriter dup;
  dup.add("encoder.module.norm.weight", {4}, w.data()).add("encoder.norm.weight", {4}, w.data());
  dup.write(d / "dup.safetensors");
  expect_io([&] { Checkpoint c(d / "dup.safetensors"); }, {"dup.safetensors", "'norm.weight'", "'encoder.module.norm.weight'",
                                                          "'encoder.norm.weight'"});
}

BOOST_AUTO_TEST_CASE(describe_names_the_fitting_preset) {
  using presets::vit_base;
  const auto v2l = section_of(encoder_shapes(1024, 24, 4096, {1024, 3, 2, 16, 16}, true, 0, false));
  BOOST_TEST(has(describe_encoder(v2l), "presets::VJepa2Encoder<presets::vit_large>"));
  const auto v2g = section_of(encoder_shapes(1408, 40, 6144, {1408, 3, 2, 16, 16}, true, 0, false));
  BOOST_TEST(has(describe_encoder(v2g), "presets::VJepa2Encoder<presets::vit_giant_xformers> (or presets::vit_giant)"));
  const auto v21G = section_of(encoder_shapes(1664, 48, 8192, {1664, 3, 2, 16, 16}, false, 4, true));
  BOOST_TEST(has(describe_encoder(v21G), "presets::VJepa21Encoder<presets::vit_gigantic_xformers>"));
  const auto v21b = section_of(encoder_shapes(768, 12, 3072, {768, 3, 2, 16, 16}, false, 4, true));
  BOOST_TEST(has(describe_encoder(v21b), "presets::VJepa21Encoder<presets::vit_base>"));
  const auto ijh = section_of(encoder_shapes(1280, 32, 5120, {1280, 3, 14, 14}, true, 0, false));
  BOOST_TEST(has(describe_encoder(ijh), "presets::IJepaEncoder<presets::vit_huge>"));
  const auto ijg16 = section_of(encoder_shapes(1408, 40, 6144, {1408, 3, 16, 16}, true, 0, false));  // IN22K-vit.g.16
  BOOST_TEST(has(describe_encoder(ijg16), "VitEncoder<40, tokenizers::Patch2d<16>"));
  const auto odd = section_of(encoder_shapes(40, 3, 80, {40, 3, 2, 8, 8}, true, 0, false));
  BOOST_TEST(has(describe_encoder(odd), "no preset has this shape"));
  BOOST_TEST(has(describe_encoder(odd), "Tubelet<2, 8>"));
  const Checkpoint ck(model_file("weights_vjepa21"));
  const std::string p = describe_predictor(*ck.find_section("predictor"));
  BOOST_TEST(has(p, "4 level(s), Dp = 16, depth 2"));
  BOOST_TEST(has(p, "a context projection"));
  BOOST_TEST(has(describe_probe(*Checkpoint(model_file("weights_probe")).find_section("classifiers.0")), "5 classes"));
}

BOOST_AUTO_TEST_CASE(shape_mismatch_names_the_preset_that_fits) {
  // A real V-JEPA 2 ViT-tiny file (zeros) loaded into a ViT-S preset.
  TmpDir d;
  {
    const presets::VJepa2Encoder<presets::vit_tiny> tiny(presets::vjepa2_config(presets::vit_tiny));
    nn::ParameterSet<float> P(tiny.layout());
    P.zero();
    io::SafetensorsWriter w;
    w.add_params(tiny.layout(), P.data(), "encoder.module.backbone.");
    w.write(d / "vit_tiny.safetensors");
  }
  const Checkpoint ck(d / "vit_tiny.safetensors");
  FeatureExtractor<presets::VJepa2Encoder<presets::vit_small>> ex(presets::vjepa2_config(presets::vit_small));
  expect_io([&] { ex.load(ck); },
            {"vit_tiny.safetensors", "section 'encoder'", "'encoder.module.backbone.patch_embed.proj.weight'",
             "[192, 3, 2, 16, 16]", "[384, 3, 2, 16, 16]", "D = 192, depth 12, MLP hidden 768",
             "presets::VJepa2Encoder<presets::vit_tiny>"});
  // The tiny fixture into a wider tiny model: no preset fits, the message says how to build one.
  FeatureExtractor<VitEncoder<2, tokenizers::Tubelet<2, 4>, RopeTiled, FinalNorm, float>> wide(
      VitConfig{48, 2, 64, 3, 1e-6, nn::MlpKind::gelu, 0, true});
  expect_io([&] { wide.load(Checkpoint(model_file("weights_vjepa2"))); },
            {"[32, 3, 2, 4, 4]", "[48, 3, 2, 4, 4]", "no preset has this shape", "VitConfig{embed_dim = 32, mlp_hidden = 64}"});
}

BOOST_AUTO_TEST_CASE(missing_unexpected_dtype_and_section_errors) {
  const Checkpoint ck(model_file("weights_vjepa2"));
  const auto cfg = encoder_config(test::load_json(dir("weights_vjepa2") / "config.json"));
  // Depth 3: blocks.2.* are missing, named with the checkpoint's description.
  FeatureExtractor<VitEncoder<3, tokenizers::Tubelet<2, 4>, RopeTiled, FinalNorm, float>> deep(cfg);
  expect_io([&] { deep.load(ck); }, {"lacks 12 tensor(s) the encoder needs", "'blocks.2.norm1.weight'", "depth 2", "allow_missing"});
  WeightsOptions allow;
  allow.allow_missing = {"blocks.2.*"};
  const auto rep = deep.load(ck, allow);
  BOOST_TEST(rep.missing.size() == 12u);
  // Depth 1: blocks.1.* have no parameter — an error when strict (the default), a report otherwise.
  FeatureExtractor<VitEncoder<1, tokenizers::Tubelet<2, 4>, RopeTiled, FinalNorm, float>> shallow(cfg);
  expect_io([&] { shallow.load(ck); }, {"12 tensor(s) no parameter of the encoder takes", "'blocks.1.", "strict = false"});
  WeightsOptions lax;
  lax.strict = false;
  BOOST_TEST(shallow.load(ck, lax).unexpected.size() == 12u);
  // Unknown section.
  WeightsOptions nope;
  nope.section = "ema_encoder";
  expect_io([&] { shallow.load(ck, nope); }, {"has no section 'ema_encoder'", "'encoder' (29 tensors)", "'target_encoder'"});
  // None of the preferred sections.
  WeightsOptions pref;
  pref.prefer = {"x", "y"};
  expect_io([&] { ck.load(shallow.encoder().layout(), shallow.params().data(), pref, "encoder"); },
            {"none of the sections 'x', 'y'", "WeightsOptions::section"});
  // A parameter stored as integers.
  TmpDir d;
  const std::vector<std::int64_t> ints(4, 1);
  io::SafetensorsWriter w;
  w.add("norm.weight", {4}, ints.data());
  w.write(d / "ints.safetensors");
  nn::ParamLayout L;
  L.add("norm.weight", {4}, nn::Init::zeros);
  std::vector<float> P(L.numel());
  WeightsOptions bare;
  bare.section = "";
  expect_io([&] { Checkpoint(d / "ints.safetensors").load(L, P.data(), bare); },
            {"'norm.weight'", "dtype I64", "F32, F64, BF16 or F16"});
}

BOOST_AUTO_TEST_CASE(rename_binds_other_parameter_names) {
  // A module that calls its layers differently binds to the official keys through renames.
  const Checkpoint ck(model_file("weights_vjepa2"));
  nn::ParamLayout L;
  L.add("embed.proj.weight", {32, 3, 2, 4, 4}, nn::Init::zeros);
  L.add("final_norm.weight", {32}, nn::Init::zeros);
  std::vector<float> P(L.numel());
  WeightsOptions o;
  o.section = "encoder";
  o.strict = false;
  o.rename = {{"embed.", "patch_embed."}, {"final_norm.", "norm."}};
  const auto rep = ck.load(L, P.data(), o);
  BOOST_TEST(rep.loaded == 2u);
  const auto ref = ck.file().read<float>("encoder.module.backbone.norm.weight");
  BOOST_TEST(std::equal(ref.begin(), ref.end(), P.begin() + static_cast<std::ptrdiff_t>(L.find("final_norm.weight").offset)));
}

BOOST_AUTO_TEST_CASE(convert_load_save_load_is_identical) {
  for (const std::string name : {"weights_vjepa2", "weights_vjepa21"}) {
    BOOST_TEST_CONTEXT(name) {
      TmpDir d;
      const auto cfgj = test::load_json(dir(name) / "config.json");
      const Checkpoint ck(model_file(name));
      const auto round = [&](auto& ex) {
        ex.load(ck);
        io::write_params(d / "a.safetensors", ex.encoder().layout(), ex.params().data());
        std::decay_t<decltype(ex)> again(encoder_config(cfgj));
        const auto rep = again.load(Checkpoint(d / "a.safetensors"));  // library names: a bare section
        BOOST_TEST(rep.section == "");
        BOOST_TEST(std::memcmp(ex.params().data(), again.params().data(), ex.params().numel() * sizeof(float)) == 0);
        io::write_params(d / "b.safetensors", again.encoder().layout(), again.params().data());
        BOOST_TEST((bytes_of(d / "a.safetensors") == bytes_of(d / "b.safetensors")));
      };
      if (name == "weights_vjepa2") {
        FeatureExtractor<Vjepa2Enc> ex(encoder_config(cfgj));
        round(ex);
      } else {  // BF16 in the file: widening to float is exact, so the values are the file's bits
        FeatureExtractor<Vjepa21Enc> ex(encoder_config(cfgj));
        round(ex);
        const auto& t = ck.find_section("target_encoder")->tensors.at("blocks.3.mlp.fc2.weight");
        const auto raw = ck.file().raw(t.keys[0]);
        const float* p = ex.params()["blocks.3.mlp.fc2.weight"];
        for (std::size_t i = 0; i < raw.size() / 2; ++i) {
          std::uint16_t b;
          std::memcpy(&b, raw.data() + 2 * i, 2);
          BOOST_REQUIRE(bf16(p[i]).bits == b);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(converter_output_equals_the_cpp_writer) {
  // The Python converter and SafetensorsWriter lay out the same tensors byte for byte (order, padding,
  // JSON): the converter's files re-written by the C++ writer are identical, for F32, BF16 and F16.
  for (const std::string name : {"weights_vjepa2", "weights_vjepa21", "weights_ijepa", "weights_probe", "weights_hf"}) {
    BOOST_TEST_CONTEXT(name) {
      TmpDir d;
      const io::SafetensorsFile f(model_file(name));
      io::SafetensorsWriter w;
      w.set_metadata(f.metadata());
      for (const auto& t : f.tensors()) w.add_raw(t.name, t.dtype, t.shape, f.raw(t.name).data());
      w.write(d / "again.safetensors");
      BOOST_TEST((bytes_of(d / "again.safetensors") == bytes_of(model_file(name))));
      // Aligned for zero-copy views.
      for (const auto& t : f.tensors())
        BOOST_TEST(reinterpret_cast<std::uintptr_t>(f.raw(t.name).data()) % io::safetensors_dtype_size(t.dtype) == 0u);
    }
  }
}

BOOST_AUTO_TEST_CASE(hf_keys_without_an_official_name_are_reported) {
  TmpDir d;
  const std::vector<float> w(16, 0.5f);
  io::SafetensorsWriter wr;
  wr.add("encoder.layer.0.attention.query.weight", {4, 4}, w.data())
      .add("encoder.layer.0.attention.value.weight", {4, 4}, w.data())  // no "key": not a qkv
      .add("encoder.layer.0.norm1.weight", {4}, w.data());
  wr.write(d / "hf.safetensors");
  const Checkpoint ck(d / "hf.safetensors");
  const auto* s = ck.find_section("encoder");
  BOOST_REQUIRE(s);
  BOOST_TEST((s->naming == KeyNaming::hf));
  BOOST_TEST(s->has("blocks.0.norm1.weight"));
  BOOST_TEST(s->untranslated.size() == 2u);
  nn::ParamLayout L;
  L.add("blocks.0.norm1.weight", {4}, nn::Init::zeros);
  std::vector<float> P(L.numel());
  WeightsOptions o;
  o.section = "encoder";
  expect_io([&] { ck.load(L, P.data(), o); }, {"2 tensor(s) no parameter", "encoder.layer.0.attention.query.weight"});
}

BOOST_AUTO_TEST_CASE(from_bytes_matches_the_file) {
  const std::string b = bytes_of(model_file("weights_probe"));
  const auto m = io::SafetensorsFile::from_bytes(std::as_bytes(std::span(b.data(), b.size())), "probe-in-memory");
  const io::SafetensorsFile f(model_file("weights_probe"));
  BOOST_TEST(m.keys() == f.keys(), boost::test_tools::per_element());
  BOOST_TEST((m.read<float>("classifiers.0.module.linear.weight") == f.read<float>("classifiers.0.module.linear.weight")));
  const std::string cut = b.substr(0, b.size() - 3);
  expect_io([&] { io::SafetensorsFile::from_bytes(std::as_bytes(std::span(cut.data(), cut.size())), "cut-copy"); },
            {"safetensors file 'cut-copy'", "truncated file?"});
  expect_io([&] { io::SafetensorsFile::from_bytes({}, "nothing"); }, {"'nothing'", "is empty"});
}

BOOST_AUTO_TEST_CASE(inference_api_input_checks) {
  const auto cfg = test::load_json(dir("weights_vjepa2") / "config.json");
  FeatureExtractor<Vjepa2Enc> ex(encoder_config(cfg));
  ex.init(1);
  std::vector<float> clip(2 * 3 * 3 * 8 * 8);
  test::expect_error<ShapeError>([&] { ex.encode(TensorView<const float, 5>(clip.data(), {2, 3, 3, 8, 8})); },
                                 {"frames = 3", "tubelet size 2"});
  test::expect_error<ShapeError>([&] { ex.encode(TensorView<const float, 5>(clip.data(), {1, 3, 2, 9, 8})); },
                                 {"resolution 9x8", "patch size 4"});
  test::expect_error<ShapeError>([&] { ex.encode_context(TensorView<const float, 5>(clip.data(), {1, 3, 2, 8, 8}), nullptr, 2); },
                                 {"encode_context"});
  test::expect_error<IndexError>(
      [&] { ex.encode(TensorView<const float, 5>(clip.data(), {1, 3, 2, 8, 8}), {.layers = {2}, .image_frames = 0, .pooled = true}); },
      {"layers", "[0, 2)"});
  // Images with a chosen repeat count (16 = the IN1K eval protocol) tile in time.
  std::vector<float> img(3 * 8 * 8, 0.25f);
  const auto f = ex.encode_image(TensorView<const float, 4>(img.data(), {1, 3, 8, 8}), {.layers = {}, .image_frames = 4, .pooled = true});
  BOOST_TEST((f.grid == nn::TokenGrid{2, 2, 2}));
  // An L-level predictor needs L taps.
  MaskedPredictor<Vjepa21Pred> mp(predictor_config(test::load_json(dir("weights_vjepa21") / "config.json")));
  test::expect_error<ShapeError>([&] { (void)predictor_input(f, mp.predictor()); }, {"predictor levels", "0 tap(s)"});
}

BOOST_AUTO_TEST_CASE(npy_writer_reads_back_through_xtensor) {
  TmpDir d;
  const std::vector<float> a = {1.5f, -2.f, 3.25f, 0.f, 1e-30f, -7.f};
  io::write_npy(d / "a.npy", Shape{2, 1, 3}, a);
  const auto ra = test::load_array(d / "a.npy");  // xt::load_npy underneath
  BOOST_TEST(ra.shape == std::vector<std::size_t>({2, 1, 3}), boost::test_tools::per_element());
  BOOST_TEST(std::equal(a.begin(), a.end(), ra.data.begin()));
  const std::vector<std::int64_t> g = {8, 16, 16};
  io::write_npy(d / "g.npy", Shape{3}, g);
  const auto rg = test::load_array(d / "g.npy");
  BOOST_TEST(rg.shape == std::vector<std::size_t>({3}), boost::test_tools::per_element());
  BOOST_TEST(rg.data == std::vector<double>({8, 16, 16}), boost::test_tools::per_element());
  const std::string h = bytes_of(d / "a.npy").substr(0, 128);
  BOOST_TEST(h.find("'shape': (2, 1, 3)") != std::string::npos);
  BOOST_TEST(bytes_of(d / "a.npy").size() % 64 == (6 * 4) % 64);  // data starts on a 64-byte boundary
  test::expect_error<ShapeError>([&] { io::write_npy(d / "x.npy", Shape{4}, a); }, {"x.npy", "needs 4 values, got 6"});
  test::expect_error<IoError>([&] { io::write_npy(d / "no" / "x.npy", Shape{6}, a); }, {"cannot write .npy file"});
}

BOOST_AUTO_TEST_CASE(non_finite_released_weights_are_refused) {
  // A released checkpoint whose weights hold NaN (a diverged run, a corrupt download) must not load:
  // it would give NaN features with exit code 0. The tensor is named; nothing is written.
  const std::string name = "weights_vjepa2";
  TmpDir d;
  const auto cfgj = test::load_json(dir(name) / "config.json");
  FeatureExtractor<Vjepa2Enc> ex(encoder_config(cfgj));
  ex.load(Checkpoint(model_file(name)));
  ex.params()["blocks.1.mlp.fc1.weight"][5] = std::numeric_limits<float>::quiet_NaN();
  io::write_params(d / "nan.safetensors", ex.encoder().layout(), ex.params().data());
  FeatureExtractor<Vjepa2Enc> fresh(encoder_config(cfgj));
  std::vector<float> before(fresh.params().data(), fresh.params().data() + fresh.params().numel());
  expect_io([&] { fresh.load(Checkpoint(d / "nan.safetensors")); }, {"blocks.1.mlp.fc1.weight", "non-finite", "NaN"});
  BOOST_TEST(std::memcmp(before.data(), fresh.params().data(), before.size() * sizeof(float)) == 0);
}
