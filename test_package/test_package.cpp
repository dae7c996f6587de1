// Conan test_package: a V-JEPA 2 encoder of the `vit_micro` preset encodes one clip; the program fails
// unless the features have the expected shape (B, N, D) = (1, 2·2·2, 64) and are finite.
#include <cmath>
#include <cstdio>
#include <vector>

#include <jepa/io/safetensors.hpp>  // nlohmann_json comes through the package's requirements
#include <jepa/jepa.hpp>
#include <jepa/models/jepa_presets.hpp>

int main() {
  namespace P = jepa::models::presets;
  P::VJepa2Encoder<P::vit_micro> enc(P::vjepa2_config(P::vit_micro));
  jepa::nn::ParameterSet<float> params(enc.layout());
  params.init(0);
  auto state = enc.make_state(jepa::models::Mode::inference, 1, {4, 32, 32});
  std::vector<float> clip(3 * 4 * 32 * 32, 0.25f);
  enc.forward(params.data(), jepa::TensorView<const float, 5>(clip.data(), {1, 3, 4, 32, 32}), nullptr, state);
  const auto out = enc.output(state);
  bool finite = true;
  for (jepa::index_t i = 0; i < out.numel(); ++i) finite = finite && std::isfinite(out.data()[i]);
  std::printf("jepa %d.%d.%d: features (%ld, %ld, %ld)%s\n", JEPA_VERSION_MAJOR, JEPA_VERSION_MINOR,
              JEPA_VERSION_PATCH, static_cast<long>(out.size(0)), static_cast<long>(out.size(1)),
              static_cast<long>(out.size(2)), finite ? "" : " NOT FINITE");
  return finite && out.size(1) == 8 && out.size(2) == 64 ? 0 : 1;
}
