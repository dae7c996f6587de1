// The ViT encoder's configuration as tools/make_encoder_fixtures.py writes it (config.json).
#pragma once

#include "jepa/models/vit_encoder.hpp"
#include "support/fixtures.hpp"

namespace jepa::test {

inline models::VitConfig encoder_fixture_config(const nlohmann::json& cfgj) {
  models::VitConfig cfg;
  cfg.embed_dim = cfgj["embed_dim"];
  cfg.num_heads = cfgj["num_heads"];
  cfg.mlp_hidden = cfgj["mlp_hidden"];
  cfg.eps = cfgj["eps"];
  cfg.rope_interp_grid = cfgj["rope_interp_grid"];
  return cfg;
}

}  // namespace jepa::test
