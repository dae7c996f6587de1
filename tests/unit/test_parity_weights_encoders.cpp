// Parity of FeatureExtractor::encode with the PyTorch reference for tiny random models of every family,
// loaded from official-layout checkpoints converted by tools/convert_checkpoint.py (fixtures from
// tools/make_weights_fixtures.py): V-JEPA 2 (module.backbone. prefixes, leftover pos_embed), the same
// weights in Hugging Face naming, V-JEPA 2.1 (g/G layout and distilled B/L layout: image + video
// tokenizers, 4 taps; BF16), I-JEPA (Conv2d, sin-cos buffers; F16) and the encoder of a 2-AC file.
// Bound, float32: per-token cosine >= 0.99999 and norm-wise relative error <= 1e-5.
#include <boost/test/unit_test.hpp>

#include "jepa/models/ac_predictor.hpp"
#include "support/weights_fixtures.hpp"

using namespace jepa;
using namespace jepa::models;
using namespace jepa::test::weights;

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

/// V-JEPA 2 checks shared by the official and the HF file (same weights, same reference).
void check_vjepa2(const std::string& file_case) {
  const auto cfg = test::load_json(dir("weights_vjepa2") / "config.json");
  const Reference ref("weights_vjepa2");
  const Checkpoint ck(model_file(file_case));
  FeatureExtractor<Vjepa2Enc> ex(encoder_config(cfg));
  const WeightsReport rep = ex.load(ck);
  BOOST_TEST_MESSAGE(file_case << ": " << rep.summary());
  BOOST_TEST(rep.section == "encoder");  // the V-JEPA 2 hub's choice (§8.2)
  BOOST_TEST(rep.loaded == ex.encoder().layout().params().size());
  BOOST_TEST(rep.unexpected.empty());
  const index_t D = cfg["embed_dim"];

  const auto clip = ref.f("clip");
  const auto f = ex.encode(ref.view<5>(clip, "clip"), {.layers = {0, 1}, .image_frames = 0, .pooled = true});
  BOOST_TEST((f.grid == nn::TokenGrid{2, 2, 3}));
  check_parity(file_case + " tokens", f.tokens, ref.f("tokens"), D);
  check_parity(file_case + " pooled", f.pooled, ref.f("pooled"), D);
  check_parity(file_case + " layer 0 (norm(x_1), out_layers)", f.layers[0], ref.f("layers.0"), D);
  check_parity(file_case + " layer 1 = output", f.layers[1], ref.f("tokens"), D);
  BOOST_TEST((ex.last_state()->mode() == Mode::inference));
  for (const auto& spec : ex.last_state()->plan().specs())  // no gradient or backward buffer is planned
    BOOST_TEST(spec.name.find("workspace") == std::string::npos, spec.name);

  const auto clip2 = ref.f("clip2");  // 2 frames of 12x8: another frame count and resolution
  check_parity(file_case + " tokens, 2x12x8 clip", ex.encode(ref.view<5>(clip2, "clip2")).tokens, ref.f("tokens2"), D);
  const auto img = ref.f("image");  // an image = one tubelet of 2 repeated frames
  check_parity(file_case + " image tokens", ex.encode_image(ref.view<4>(img, "image")).tokens, ref.f("image_tokens"), D);
  const auto ctx = ref.i("ctx_idx");
  const auto fc = ex.encode_context(ref.view<5>(clip, "clip"), ctx.data(), ref.shape("ctx_idx")[1]);
  check_parity(file_case + " context tokens (masked encoding)", fc.tokens, ref.f("context_features"), D);
  BOOST_TEST(std::equal(fc.token_index.begin(), fc.token_index.end(), ctx.begin()));
}

}  // namespace

BOOST_AUTO_TEST_CASE(vjepa2_encoder_official_layout) {
  check_vjepa2("weights_vjepa2");
  // The report says what was skipped: the leftover pos_embed buffer.
  const Checkpoint ck(model_file("weights_vjepa2"));
  FeatureExtractor<Vjepa2Enc> ex(encoder_config(test::load_json(dir("weights_vjepa2") / "config.json")));
  const auto rep = ex.load(ck);
  BOOST_TEST(contains(rep.ignored, "pos_embed"));
  BOOST_TEST(ck.file().metadata().at("jepa.value.epoch") == "10");  // scalars kept as metadata
  BOOST_TEST(ck.other_keys().empty());                             // optimizer state left out by the converter
  // target_encoder on request: the EMA weights evals use.
  WeightsOptions o;
  o.section = "target_encoder";
  BOOST_TEST(ex.load(ck, o).section == "target_encoder");
  const Reference ref("weights_vjepa2");
  const auto clip = ref.f("clip");
  check_parity("target_encoder tokens", ex.encode(ref.view<5>(clip, "clip")).tokens, ref.f("tokens_other"), 32);
}

BOOST_AUTO_TEST_CASE(vjepa2_encoder_hugging_face_naming) {
  const Checkpoint ck(model_file("weights_hf"));
  const auto* enc = ck.find_section("encoder");
  BOOST_REQUIRE(enc);
  BOOST_TEST((enc->naming == KeyNaming::hf));
  BOOST_TEST(enc->tensors.at("blocks.1.attn.qkv.weight").keys.size() == 3u);  // query | key | value
  BOOST_TEST((enc->tensors.at("blocks.1.attn.qkv.weight").shape == Shape{96, 32}));
  check_vjepa2("weights_hf");
}

BOOST_AUTO_TEST_CASE(vjepa21_encoder_video_image_taps) {
  for (const std::string name : {"weights_vjepa21", "weights_vjepa21_dist"}) {
    BOOST_TEST_CONTEXT(name) {
      const auto cfg = test::load_json(dir(name) / "config.json");
      const Reference ref(name);
      const Checkpoint ck(model_file(name));
      FeatureExtractor<Vjepa21Enc> ex(encoder_config(cfg));
      const auto rep = ex.load(ck);
      BOOST_TEST_MESSAGE(rep.summary());
      // The 2.1 hub: ema_encoder for the distilled B/L, target_encoder for g/G.
      BOOST_TEST(rep.section == (name == "weights_vjepa21" ? "target_encoder" : "ema_encoder"));
      BOOST_TEST(rep.ignored.empty());
      const index_t D = cfg["embed_dim"];
      const auto clip = ref.f("clip");
      const auto f = ex.encode(ref.view<5>(clip, "clip"));
      BOOST_REQUIRE_EQUAL(f.taps.size(), 4u);
      for (int j = 0; j < 4; ++j) check_parity(name + " tap " + std::to_string(j), f.taps[j], ref.f("taps." + std::to_string(j)), D);
      check_parity(name + " tokens (norms_block.3)", f.tokens, ref.f("tokens"), D);
      const auto img = ref.f("image");
      const auto fi = ex.encode_image(ref.view<4>(img, "image"));  // 1-frame clip through patch_embed_img
      BOOST_TEST((fi.grid == nn::TokenGrid{1, 2, 3}));
      for (int j = 0; j < 4; ++j)
        check_parity(name + " image tap " + std::to_string(j), fi.taps[j], ref.f("image_taps." + std::to_string(j)), D);
      const auto clip2 = ref.f("clip2");
      check_parity(name + " tokens, 2x12x8 clip", ex.encode(ref.view<5>(clip2, "clip2")).tokens, ref.f("tokens2"), D);
      WeightsOptions o;
      o.section = name == "weights_vjepa21" ? "encoder" : "target_encoder";
      ex.load(ck, o);
      check_parity(name + " other encoder section", ex.encode(ref.view<5>(clip, "clip")).tokens, ref.f("tokens_other"), D);
    }
  }
}

BOOST_AUTO_TEST_CASE(ijepa_encoder_conv2d_sincos) {
  const auto cfg = test::load_json(dir("weights_ijepa") / "config.json");
  const Reference ref("weights_ijepa");
  const Checkpoint ck(model_file("weights_ijepa"));
  FeatureExtractor<IjepaEnc> ex(encoder_config(cfg));
  const auto rep = ex.load(ck);
  BOOST_TEST(rep.section == "target_encoder");
  BOOST_TEST(contains(rep.ignored, "pos_embed"));
  const index_t D = cfg["embed_dim"];
  const auto img = ref.f("image");
  const auto f = ex.encode_image(ref.view<4>(img, "image"));
  BOOST_TEST((f.grid == nn::TokenGrid{1, 3, 3}));
  check_parity("I-JEPA tokens", f.tokens, ref.f("tokens"), D);
  // The frozen pos_embed buffer in the file is the 2-D sin-cos table the encoder computes ([col | row]).
  const auto* sec = ck.find_section("target_encoder");
  const auto stored = ck.file().read<float>(sec->tensors.at("pos_embed").keys[0]);
  const auto table = nn::sincos_2d_table<float>(D, 3, 3, nn::SinCos2dOrder::col_row);
  BOOST_REQUIRE_EQUAL(stored.size(), table.size());
  double worst = 0;
  for (std::size_t i = 0; i < table.size(); ++i) worst = std::max(worst, std::abs(double(stored[i]) - table[i]));
  BOOST_TEST(worst < 1e-3);  // stored as F16
  WeightsOptions o;
  o.section = "encoder";
  ex.load(ck, o);
  check_parity("I-JEPA online encoder", ex.encode_image(ref.view<4>(img, "image")).tokens, ref.f("tokens_other"), D);
}

BOOST_AUTO_TEST_CASE(ac_file_encoder_and_predictor_keys) {
  const auto cfg = test::load_json(dir("weights_ac") / "config.json");
  const Reference ref("weights_ac");
  const Checkpoint ck(model_file("weights_ac"));
  FeatureExtractor<Vjepa2Enc> ex(encoder_config(cfg));
  BOOST_TEST(ex.load(ck).section == "encoder");  // the AC hub loads "encoder"
  const auto clip = ref.f("clip");
  check_parity("2-AC encoder tokens", ex.encode(ref.view<5>(clip, "clip")).tokens, ref.f("tokens"), 32);
  // The predictor section holds exactly the official AC keys (recipe_facts §8.3) at the tiny dims.
  const auto* pred = ck.find_section("predictor");
  BOOST_REQUIRE(pred);
  const auto keys = ac_predictor_keys(32, 16, 2, 7, 7, 6, 32);
  BOOST_TEST(pred->tensors.size() == keys.size());
  for (const auto& [k, s] : keys) {
    BOOST_TEST_CONTEXT(k) {
      BOOST_REQUIRE(pred->has(k));
      BOOST_TEST(*pred->shape(k) == s);
    }
  }
  BOOST_TEST(describe_predictor(*pred).find("V-JEPA 2-AC predictor") != std::string::npos);
  // The library's AC predictor (models/ac_predictor.hpp) binds to those keys strictly, the unused
  // extrinsics encoder included; the loaded values are the file's.
  AcPredictorConfig ac;
  ac.encoder_dim = 32, ac.pred_dim = 16, ac.num_heads = 2, ac.mlp_hidden = 32, ac.grid_h = 2, ac.grid_w = 3;
  const AcPredictor<2, RopeTiled, float> model(ac);
  nn::ParameterSet<float> P(model.layout());
  const auto rep = load_ac_predictor(ck, model, P.data());
  BOOST_TEST(rep.section == "predictor");
  BOOST_TEST(rep.loaded == keys.size());
  BOOST_TEST(rep.unexpected.empty());
  const auto w = ck.file().read<float>("predictor.module.action_encoder.weight");
  BOOST_TEST(std::equal(w.begin(), w.end(), P["action_encoder.weight"]));
}
