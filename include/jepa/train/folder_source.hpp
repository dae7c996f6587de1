// jepa/train/folder_source.hpp — real data for the trainer: a ClipSource over a folder of videos,
// a folder of frame folders, or a folder of images (jepa/data/folders.hpp), with the recipe's
// training transforms (frame sampling at the target fps, one random-resized-crop per clip, flip,
// ImageNet normalisation).
//
// Sample i of the stream is file (i mod size) with augmentation seed (i div size), i.e. epochs in a
// fixed order, so a resumed run sees exactly the same clips. A file that cannot be decoded is skipped
// and reported (the run continues); the dataset for each geometry (the cooldown's larger clips) is
// built on first use.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "jepa/data/folders.hpp"
#include "jepa/models/vit_encoder.hpp"

namespace jepa::train {

class FolderSource {
 public:
  enum class Kind { videos, frames, images };
  FolderSource(Kind kind, std::string root, int target_fps = 4, int max_skips_per_batch = 64)
      : kind_(kind), root_(std::move(root)), fps_(target_fps), max_skips_(max_skips_per_batch) {}

  /// "videos:PATH", "frames:PATH" or "images:PATH".
  static FolderSource parse(const std::string& spec) {
    const auto colon = spec.find(':');
    const std::string kind = spec.substr(0, colon), path = colon == std::string::npos ? "" : spec.substr(colon + 1);
    if (path.empty() || (kind != "videos" && kind != "frames" && kind != "images"))
      throw ConfigError("jepa: data source '" + spec + "' is invalid: use synthetic, videos:PATH, frames:PATH or images:PATH");
    return FolderSource(kind == "videos" ? Kind::videos : kind == "frames" ? Kind::frames : Kind::images, path);
  }

  std::uint64_t fill(std::uint64_t position, index_t B, const models::InputGeometry& g, float* out,
                     std::vector<std::string>& skipped) const {
    if (g.height != g.width) throw ConfigError("jepa: folder sources produce square crops; use equal height and width");
    const data::FolderDataset& ds = dataset(g);
    const std::size_t per = static_cast<std::size_t>(3 * g.frames * g.height * g.width);
    std::uint64_t consumed = 0;
    int skips = 0;
    for (index_t b = 0; b < B;) {
      const std::uint64_t i = position + consumed++;
      auto r = ds.try_get(static_cast<std::size_t>(i % ds.size()), i / ds.size());
      if (!r || r.sample->pixels.size() != per) {
        skipped.push_back(r ? "sample " + r.sample->source + " has the wrong size" : r.error);
        if (++skips > max_skips_)
          throw IoError(jepa::detail::cat("jepa: more than ", max_skips_, " unreadable samples in one batch from '",
                                          root_, "' (last: ", skipped.back(), ")"));
        continue;
      }
      std::copy(r.sample->pixels.begin(), r.sample->pixels.end(), out + static_cast<std::size_t>(b) * per);
      ++b;
    }
    return consumed;
  }

 private:
  const data::FolderDataset& dataset(const models::InputGeometry& g) const {
    const auto key = std::tuple{g.frames, g.height};
    auto it = cache_.find(key);
    if (it != cache_.end()) return *it->second;
    std::shared_ptr<data::FolderDataset> ds;
    if (kind_ == Kind::images) {
      data::ImageOptions o;
      o.crop = static_cast<int>(g.height);
      o.repeat_frames = static_cast<int>(g.frames);
      ds = std::make_shared<data::ImageFolder>(root_, o);
    } else {
      data::ClipOptions o;
      o.frames = static_cast<int>(g.frames);
      o.crop = static_cast<int>(g.height);
      o.target_fps = fps_;
      if (kind_ == Kind::videos) ds = std::make_shared<data::VideoFolder>(root_, o);
      else {
        o.frame_step = 1;
        ds = std::make_shared<data::FrameFolder>(root_, o);
      }
    }
    return *cache_.emplace(key, std::move(ds)).first->second;
  }

  Kind kind_;
  std::string root_;
  int fps_, max_skips_;
  mutable std::map<std::tuple<index_t, index_t>, std::shared_ptr<data::FolderDataset>> cache_;
};

}  // namespace jepa::train
