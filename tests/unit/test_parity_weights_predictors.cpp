// Parity of the masked prediction (predict_masked: context encoded alone, then the predictor) and of
// the attentive-probe head with the PyTorch reference (tools/make_weights_fixtures.py), loaded from
// converted official-layout checkpoints: V-JEPA 2 (10 mask tokens, tiled RoPE; official and HF
// naming, the HF mask tokens stacked [10,1,1,Dp]), V-JEPA 2.1 (4-level fusion input, modality
// embedding, context projection; and the distilled 1-level layout with teacher-width outputs),
// I-JEPA (one mask_token, 2-D sin-cos, no sorting) and a probe file with V-JEPA 1's unused xattn.proj.
// Bound, float32: per-token cosine >= 0.99999 and norm-wise relative error <= 1e-5.
#include <boost/test/unit_test.hpp>

#include "support/weights_fixtures.hpp"

using namespace jepa;
using namespace jepa::models;
using namespace jepa::test::weights;

namespace {

template <class Enc, class Pred>
void check_prediction(const std::string& ref_case, const std::string& file_case, bool image_input = false) {
  const auto cfg = test::load_json(dir(ref_case) / "config.json");
  const Reference ref(ref_case);
  const Checkpoint ck(model_file(file_case));
  FeatureExtractor<Enc> ex(encoder_config(cfg));
  MaskedPredictor<Pred> mp(predictor_config(cfg));
  ex.load(ck);
  const WeightsReport rep = mp.load(ck);
  BOOST_TEST_MESSAGE(file_case << " predictor: " << rep.summary());
  BOOST_TEST(rep.section == "predictor");
  BOOST_TEST(rep.loaded == mp.predictor().layout().params().size());

  const auto ctx = ref.i("ctx_idx"), tgt = ref.i("tgt_idx");
  const index_t Kc = ref.shape("ctx_idx")[1], Kt = ref.shape("tgt_idx")[1];
  std::vector<float> pixels = ref.f(image_input ? "image" : "clip");
  Shape s = ref.shape(image_input ? "image" : "clip");
  if (image_input) s = Shape{s[0], s[1], 1, s[2], s[3]};  // (B,C,H,W) → a 1-frame clip
  const TensorView<const float, 5> clip(pixels.data(), {s[0], s[1], s[2], s[3], s[4]});
  const auto p = predict_masked(ex, mp, clip, ctx.data(), Kc, tgt.data(), Kt);
  const index_t W = mp.predictor().output_width();
  BOOST_TEST(p.width == W);
  check_parity(file_case + " prediction (targets)", p.targets, ref.f("prediction"), W);
  if (ref.has("prediction_context")) check_parity(file_case + " prediction (context)", p.context, ref.f("prediction_context"), W);
  else BOOST_TEST(p.context.empty());
}

}  // namespace

BOOST_AUTO_TEST_CASE(vjepa2_predictor) {
  check_prediction<Vjepa2Enc, Vjepa2Pred>("weights_vjepa2", "weights_vjepa2");
  const Checkpoint ck(model_file("weights_vjepa2"));
  const auto* sec = ck.find_section("predictor");
  BOOST_REQUIRE(sec);
  BOOST_TEST(sec->count_indexed("mask_tokens.", "") == 10);
}

BOOST_AUTO_TEST_CASE(vjepa2_predictor_hugging_face_naming) {
  const Checkpoint ck(model_file("weights_hf"));
  const auto* sec = ck.find_section("predictor");
  BOOST_REQUIRE(sec);
  BOOST_TEST((sec->naming == KeyNaming::hf));
  BOOST_TEST(sec->tensors.at("mask_tokens.3").index == 3);  // a slice of embeddings.mask_tokens [10,1,1,16]
  BOOST_TEST((sec->tensors.at("mask_tokens.3").shape == Shape{1, 1, 16}));
  BOOST_TEST(sec->untranslated.empty());
  check_prediction<Vjepa2Enc, Vjepa2Pred>("weights_vjepa2", "weights_hf");
}

BOOST_AUTO_TEST_CASE(vjepa21_multilevel_predictor) {
  check_prediction<Vjepa21Enc, Vjepa21Pred>("weights_vjepa21", "weights_vjepa21");
}

BOOST_AUTO_TEST_CASE(vjepa21_distilled_predictor) {
  check_prediction<Vjepa21Enc, Vjepa21DistPred>("weights_vjepa21_dist", "weights_vjepa21_dist");
}

BOOST_AUTO_TEST_CASE(ijepa_predictor) {
  check_prediction<IjepaEnc, IjepaPred>("weights_ijepa", "weights_ijepa", true);
  const Checkpoint ck(model_file("weights_ijepa"));
  MaskedPredictor<IjepaPred> mp(predictor_config(test::load_json(dir("weights_ijepa") / "config.json")));
  const auto rep = mp.load(ck);
  BOOST_TEST((std::find(rep.ignored.begin(), rep.ignored.end(), "predictor_pos_embed") != rep.ignored.end()));
}

BOOST_AUTO_TEST_CASE(attentive_probe_head) {
  const auto cfg = test::load_json(dir("weights_probe") / "config.json");
  const Reference ref("weights_probe");
  const Checkpoint ck(model_file("weights_probe"));
  eval::AttentiveProbeConfig pc;
  pc.dim = cfg["embed_dim"];
  pc.num_heads = cfg["probe_heads"];
  pc.depth = cfg["probe_depth"];
  pc.mlp_hidden = cfg["probe_mlp"];
  pc.num_classes = cfg["classes"];
  const eval::AttentiveProbe<float> probe(pc);
  nn::ParameterSet<float> P(probe.layout());
  const auto rep = load_probe(ck, probe, P.data());
  BOOST_TEST_MESSAGE("probe: " << rep.summary());
  BOOST_TEST(rep.section == "classifiers.0");
  BOOST_TEST(rep.ignored.size() == 2u);  // xattn.proj.{weight,bias}: defined by V-JEPA 1, never applied
  const auto feats = ref.f("features");
  const auto fv = ref.view<3>(feats, "features");
  auto st = probe.make_state(fv.size(0), fv.size(1), Mode::inference);
  probe.forward(P.data(), fv, st);
  const auto logits = probe.logits(st);
  check_parity("probe logits", logits.data(), ref.f("logits"), static_cast<std::size_t>(logits.numel()), pc.num_classes);
}
