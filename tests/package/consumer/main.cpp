// A minimal jepa consumer: a V-JEPA 2 encoder of the `vit_micro` preset encodes one random clip.
// Checks the output shape (B, N, D) = (1, 2·4·4, 64) and that every feature is finite; prints them.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <jepa/jepa.hpp>
#include <jepa/models/jepa_presets.hpp>

namespace P = jepa::models::presets;

int main() {
#ifdef JEPA_CONSUMER_EXPECT_VERSION
  char headers[32];
  std::snprintf(headers, sizeof headers, "%d.%d.%d", JEPA_VERSION_MAJOR, JEPA_VERSION_MINOR, JEPA_VERSION_PATCH);
  if (std::strcmp(headers, JEPA_CONSUMER_EXPECT_VERSION) != 0) {
    std::fprintf(stderr, "consumer: package version %s but headers say %s\n", JEPA_CONSUMER_EXPECT_VERSION, headers);
    return 1;
  }
#endif
  try {
    P::VJepa2Encoder<P::vit_micro> enc(P::vjepa2_config(P::vit_micro));
    jepa::nn::ParameterSet<float> params(enc.layout());
    params.init(/*seed=*/0);
    const jepa::models::InputGeometry geom{/*frames=*/4, /*height=*/64, /*width=*/64};
    auto state = enc.make_state(jepa::models::Mode::inference, /*batch=*/1, geom);

    std::vector<float> clip(3 * 4 * 64 * 64);  // (B,3,F,H,W), a deterministic pseudo-random clip
    std::uint32_t x = 12345;
    for (float& v : clip) v = static_cast<float>((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    enc.forward(params.data(), jepa::TensorView<const float, 5>(clip.data(), {1, 3, 4, 64, 64}), nullptr, state);

    const auto out = enc.output(state);  // (B, N, D)
    double sum = 0;
    for (jepa::index_t i = 0; i < out.numel(); ++i) {
      if (!std::isfinite(out.data()[i])) {
        std::fprintf(stderr, "consumer: feature %ld is not finite\n", static_cast<long>(i));
        return 1;
      }
      sum += std::fabs(out.data()[i]);
    }
    std::printf("features (%ld, %ld, %ld), mean |x| %.4f\n", static_cast<long>(out.size(0)),
                static_cast<long>(out.size(1)), static_cast<long>(out.size(2)), sum / static_cast<double>(out.numel()));
    if (out.size(0) != 1 || out.size(1) != 2 * 4 * 4 || out.size(2) != 64 || sum == 0) return 1;
  } catch (const jepa::Error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
