// Parity of the ViT encoder with the PyTorch reference (tools/make_encoder_fixtures.py):
//   vjepa2_tiny   depth 2, D 64, 2 heads (Dh 32: RoPE 10/10/10 + 2), Tubelet<2,8>, tiled RoPE, final norm
//   vjepa21_tiny  depth 4, D 96, 3 heads, 4×(4·6) grid, interleaved RoPE, interpolate_rope (G0 = 32),
//                 taps {0,1,2,3} with norms_block.0..3
// Each case runs the full clip and a masked context subset (K = N/2, per-sample indices), forward
// and backward with loss = Σ_outputs ⟨output, G⟩.
// Bounds (norm-wise relative error ‖a−b‖/‖b‖): float outputs ≤ 1e-5, float gradients ≤ 1e-4;
// the double instantiation must match to ≤ 1e-10 (it is the same math as the float64 reference).
#include <boost/test/unit_test.hpp>
#include <cstdio>

#include "jepa/jepa.hpp"
#include "support/check.hpp"
#include "support/encoder_fixture.hpp"
#include "support/fixtures.hpp"

using namespace jepa;
using namespace jepa::models;

namespace {

template <class Enc>
void run_case(const std::string& name, double out_tol, double grad_tol) {
  using T = typename Enc::value_type;
  const auto dir = test::fixture_dir(name);
  const auto cfgj = test::load_json(dir / "config.json");
  const VitConfig cfg = test::encoder_fixture_config(cfgj);
  BOOST_REQUIRE_EQUAL(static_cast<int>(cfgj["depth"]), Enc::depth);
  BOOST_REQUIRE_EQUAL(static_cast<int>(cfgj["tubelet"]), Enc::tokenizer_type::tubelet);
  BOOST_REQUIRE_EQUAL(static_cast<int>(cfgj["patch"]), Enc::tokenizer_type::patch);
  Enc enc(cfg);

  nn::ParameterSet<T> P(enc.layout()), G(enc.layout());
  BOOST_REQUIRE_EQUAL(test::load_params(enc.layout(), P.data(), dir), enc.layout().params().size());

  const index_t B = cfgj["batch"];
  const InputGeometry geom{cfgj["frames"], cfgj["height"], cfgj["width"]};
  const auto clip = test::as<T>(test::load_array(dir / "input.npy"));
  TensorView<const T, 5> clip_view(clip.data(), {B, 3, geom.frames, geom.height, geom.width});
  const int n_out = Enc::has_final_norm ? 1 : Enc::num_taps;

  for (const std::string run : {"full", "masked"}) {
    BOOST_TEST_CONTEXT(name << " / " << run << " / " << (sizeof(T) == 4 ? "float" : "double")) {
      std::vector<std::int64_t> idx;
      index_t K = enc.grid(geom).size();
      if (run == "masked") {
        const auto a = test::load_array(dir / "context_idx.npy");
        idx = test::as<std::int64_t>(a);
        K = static_cast<index_t>(a.shape[1]);
      }
      auto state = run == "masked" ? enc.make_state(Mode::training, B, geom, K) : enc.make_state(Mode::training, B, geom);
      enc.forward(P.data(), clip_view, idx.empty() ? nullptr : idx.data(), state);

      std::vector<std::vector<T>> gouts;
      std::vector<const T*> gptr;
      for (int j = 0; j < n_out; ++j) {
        const std::string suffix = Enc::has_final_norm ? "_out" : "_tap" + std::to_string(j);
        const auto ref = test::load_array(dir / (run + suffix + ".npy"));
        const auto out = enc.output(state, j);
        BOOST_REQUIRE_EQUAL(static_cast<std::size_t>(out.numel()), ref.size());
        const double e = test::rel_error(out.data(), ref.data.data(), ref.size());
        BOOST_TEST_MESSAGE("output " << j << " rel error " << e);
        BOOST_TEST(e <= out_tol, "output " << j << " rel error " << e << " > " << out_tol);
        const std::string gname = Enc::has_final_norm ? "_gout" : "_gout_tap" + std::to_string(j);
        gouts.push_back(test::as<T>(test::load_array(dir / (run + gname + ".npy"))));
      }
      for (auto& g : gouts) gptr.push_back(g.data());

      G.zero();
      std::vector<T> dclip(clip.size());
      enc.backward(P.data(), G.data(), state, std::span<const T* const>(gptr), dclip.data());
      const auto gin = test::load_array(dir / (run + "_grad_input.npy"));
      const double ein = test::rel_error(dclip.data(), gin.data.data(), gin.size());
      BOOST_TEST_MESSAGE("input gradient rel error " << ein);
      BOOST_TEST(ein <= grad_tol, "input gradient rel error " << ein << " > " << grad_tol);

      const auto gdir = dir / (run + "_grad");
      if (std::filesystem::exists(gdir)) {
        double worst = 0;
        std::string worst_name;
        for (const auto& p : enc.layout().params()) {
          const auto ref = test::load_array(gdir / (p.name + ".npy"));
          BOOST_REQUIRE_EQUAL(ref.size(), p.numel());
          const double e = test::rel_error(G.data() + p.offset, ref.data.data(), ref.size());
          if (e > worst) worst = e, worst_name = p.name;
          BOOST_TEST(e <= grad_tol, "gradient of " << p.name << " rel error " << e << " > " << grad_tol);
        }
        BOOST_TEST_MESSAGE("worst parameter gradient rel error " << worst << " (" << worst_name << ")");
      }
    }
  }
}

using Tiny2 = VitEncoder<2, tokenizers::Tubelet<2, 8>, RopeTiled, FinalNorm, float>;
using Tiny2d = VitEncoder<2, tokenizers::Tubelet<2, 8>, RopeTiled, FinalNorm, double>;
using Tiny21 = VitEncoder<4, tokenizers::Tubelet<2, 8>, RopeInterleaved, HierarchicalTaps<0, 1, 2, 3>, float>;
using Tiny21d = VitEncoder<4, tokenizers::Tubelet<2, 8>, RopeInterleaved, HierarchicalTaps<0, 1, 2, 3>, double>;

}  // namespace

BOOST_AUTO_TEST_CASE(vjepa2_tiny_float) { run_case<Tiny2>("vjepa2_tiny", 1e-5, 1e-4); }
BOOST_AUTO_TEST_CASE(vjepa2_tiny_double) { run_case<Tiny2d>("vjepa2_tiny", 1e-10, 1e-6); }
BOOST_AUTO_TEST_CASE(vjepa21_tiny_float) { run_case<Tiny21>("vjepa21_tiny", 1e-5, 1e-4); }
BOOST_AUTO_TEST_CASE(vjepa21_tiny_double) { run_case<Tiny21d>("vjepa21_tiny", 1e-10, 1e-6); }
