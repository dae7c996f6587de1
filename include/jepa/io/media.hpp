// jepa/io/media.hpp — one visual input (a video file, a folder of frames, or an image) to the clip an
// encoder consumes, preprocessed exactly as the reference's evaluation / hub pipeline (recipe_facts
// §8.4). Opt-in (FFmpeg + stb: link the jepa::video CMake target); not part of jepa.hpp.
//
//   kind       a directory → frame folder (its image files sorted by name = frames 0, 1, …);
//              an image extension (.png .jpg .jpeg .bmp .tga .gif .ppm .pgm .pnm) → image;
//              anything else → a video file, opened with libavformat (any container FFmpeg reads).
//   sampling   step = frame_step if > 0; else, with target_fps > 0, step = ceil(native fps) div
//              target_fps (V-JEPA 2's fps mode, data::frame_step_for_fps); else 1. The clip is the
//              reference's deterministic window (data::sample_clip_indices with random_start = false:
//              linspace over [start, start + frames·step), endpoint included, truncated; a video shorter
//              than that is padded with its last frame), shifted by `start`.
//              frames = 0 takes every step-th frame from `start` to the end, rounded down to a multiple
//              of `frames_multiple_of` (the tubelet), at least one multiple (padded when too short).
//   transform  crop > 0: data::EvalTransform — short side → int(crop·256/224) with OpenCV INTER_LINEAR
//              (bit-exact), centre crop crop×crop, /255, ImageNet mean/std; crop = 0: /255 and the
//              ImageNet normalisation only, at the native size.
//   output     (3,F,H,W) float, index ((c·F + f)·H + y)·W + x; an image is F = 1.
//
//   memory     frames are decoded one at a time and shrunk to the output as they arrive (decode,
//              transform, drop), so at most one full-resolution frame exists at a time; the output
//              clip is sized and checked against the memory left (MemoryError) before any decoding.
//
// Errors: a missing path, an unreadable or undecodable file (named, with FFmpeg's or stb's reason), an
// empty frame folder, frames of different sizes → jepa::IoError naming the file; bad options →
// ConfigError naming the field; a frame or an output clip larger than the memory left →
// MemoryError naming the file and its size.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/memory_budget.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/data/folders.hpp"
#include "jepa/data/transforms.hpp"
#include "jepa/io/image.hpp"
#include "jepa/io/video.hpp"

namespace jepa::io {

enum class MediaKind : std::uint8_t { video, frame_folder, image };

constexpr const char* media_kind_name(MediaKind k) {
  return k == MediaKind::video ? "video" : k == MediaKind::frame_folder ? "frame folder" : "image";
}

struct MediaOptions {
  std::int64_t frames = 16;         ///< frames to sample; 0 = every step-th frame to the end
  int frame_step = 0;               ///< > 0: fixed step between sampled frames
  int target_fps = 0;               ///< > 0 (and frame_step = 0): step = ceil(native fps) div target_fps
  std::int64_t start = 0;           ///< first frame of the window
  int crop = 256;                   ///< EvalTransform crop; 0 = native size, normalisation only
  double folder_fps = 0;            ///< native rate of a frame folder (needed with target_fps)
  std::int64_t frames_multiple_of = 2;  ///< frames = 0: round the count down to a multiple of this
  std::int64_t max_frames = 4096;   ///< frames = 0: at most this many
  VideoReaderOptions reader{};

  void validate() const {
    check_field(frames >= 0, "MediaOptions.frames", frames, "must be >= 0 (0 = every step-th frame)");
    check_field(frame_step >= 0, "MediaOptions.frame_step", frame_step, "must be >= 0 (0 = from target_fps, else 1)");
    check_field(target_fps >= 0, "MediaOptions.target_fps", target_fps, "must be >= 0 (0 = off)");
    check_field(start >= 0, "MediaOptions.start", start, "must be >= 0");
    check_field(crop >= 0, "MediaOptions.crop", crop, "must be >= 0 (0 = native size)");
    check_field(frames_multiple_of >= 1, "MediaOptions.frames_multiple_of", frames_multiple_of, "must be >= 1");
    check_field(max_frames >= 1, "MediaOptions.max_frames", max_frames, "must be >= 1");
  }
};

/// A preprocessed input.
struct MediaClip {
  std::vector<float> pixels;           // (3,F,H,W)
  std::int64_t frames = 0, height = 0, width = 0;
  MediaKind kind = MediaKind::image;
  std::string source;                  // the path
  std::vector<std::int64_t> indices;   // source frame of every output frame
  int step = 1;                        // the frame step used
  double native_fps = 0;               // 0 when unknown (images, folders without folder_fps)
  int source_width = 0, source_height = 0;
};

namespace detail_media {
inline std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
inline bool is_image_name(const std::filesystem::path& p) {
  const std::string e = lower(p.extension().string());
  const auto& ex = data::image_extensions();
  return std::find(ex.begin(), ex.end(), e) != ex.end();
}
/// The source frame indices of the window (see the header comment).
inline std::vector<std::int64_t> window(std::int64_t len, const MediaOptions& o, int step, const std::string& path) {
  if (len <= 0) throw IoError(jepa::detail::cat("jepa: '", path, "' has no frames"));
  if (o.start >= len)
    fail_field("MediaOptions.start", o.start,
               jepa::detail::cat("'", path, "' has ", len, " frames (0 to ", len - 1, "); the window must start at one of them"));
  const std::int64_t avail = len - o.start;
  std::vector<std::int64_t> idx;
  if (o.frames == 0) {
    std::int64_t n = std::min<std::int64_t>((avail + step - 1) / step, o.max_frames);
    n = std::max<std::int64_t>(n / o.frames_multiple_of, 1) * o.frames_multiple_of;
    for (std::int64_t i = 0; i < n; ++i) idx.push_back(std::min(o.start + i * step, len - 1));
    return idx;
  }
  Rng unused(0, 0);
  idx = data::sample_clip_indices(avail, static_cast<int>(o.frames), step, unused, /*random_start=*/false);
  for (auto& i : idx) i += o.start;
  return idx;
}
/// The output clip (3,F,H,W), filled one source frame at a time: each frame is transformed as soon
/// as it is decoded and dropped, so no full-resolution frame outlives its turn.
class ClipFiller {
 public:
  ClipFiller(const MediaOptions& o, std::int64_t frames, const std::string& source) : o_(o), F_(frames), source_(source) {}

  /// Sizes and allocates the output for W×H source frames (the first frame, or the video's size).
  void start(int width, int height) {
    if (!px_.empty()) return;
    src_w_ = width, src_h_ = height;
    H_ = o_.crop > 0 ? o_.crop : height;
    W_ = o_.crop > 0 ? o_.crop : width;
    const std::size_t bytes = bytes_of(3, F_, H_, W_, sizeof(float));
    require_host_memory(bytes,
                        jepa::detail::cat("the preprocessed clip of '", source_, "' (3x", F_, "x", H_, "x", W_, " floats)"),
                        o_.crop > 0 ? "lower MediaOptions.frames or MediaOptions.crop"
                                    : "set MediaOptions.crop > 0 (0 keeps the native size) or lower MediaOptions.frames");
    px_.assign(bytes / sizeof(float), 0.0f);
  }
  /// Transforms `fr` into the output frames `at`.
  void put(RgbFrame& fr, const std::vector<std::size_t>& at) {
    start(fr.width, fr.height);
    const std::size_t plane = static_cast<std::size_t>(H_) * static_cast<std::size_t>(W_), F = static_cast<std::size_t>(F_);
    if (o_.crop > 0) {
      std::vector<RgbFrame> one;
      one.push_back(std::move(fr));  // moved, not copied: the frame may be gigabytes
      const std::vector<float> t = data::EvalTransform{o_.crop}(one);
      fr = std::move(one[0]);
      for (const std::size_t f : at)
        for (std::size_t c = 0; c < 3; ++c) std::copy_n(t.data() + c * plane, plane, px_.data() + (c * F + f) * plane);
      return;
    }
    // crop = 0: data::frames_to_clip's normalisation, written in place (no full-size float copy).
    const std::size_t f0 = at.front();
    for (std::size_t p = 0; p < plane; ++p)
      for (std::size_t c = 0; c < 3; ++c)
        px_[(c * F + f0) * plane + p] = (static_cast<float>(fr.rgb[p * 3 + c]) / 255.0f - data::kImagenetMean[c]) / data::kImagenetStd[c];
    for (std::size_t k = 1; k < at.size(); ++k)
      for (std::size_t c = 0; c < 3; ++c)
        std::copy_n(px_.data() + (c * F + f0) * plane, plane, px_.data() + (c * F + at[k]) * plane);
  }
  std::vector<float> take(std::int64_t& h, std::int64_t& w) {
    h = H_, w = W_;
    return std::move(px_);
  }
  int source_width() const { return src_w_; }
  int source_height() const { return src_h_; }

 private:
  const MediaOptions& o_;
  std::int64_t F_ = 0, H_ = 0, W_ = 0;
  int src_w_ = 0, src_h_ = 0;
  std::string source_;
  std::vector<float> px_;
};
}  // namespace detail_media

/// What kind of input `path` is (see the header comment). IoError when it does not exist.
inline MediaKind media_kind(const std::filesystem::path& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st))
    throw IoError(jepa::detail::cat("jepa: input '", path.string(), "' does not exist (a video file, an image, or a folder of frames)"));
  if (std::filesystem::is_directory(st)) return MediaKind::frame_folder;
  return detail_media::is_image_name(path) ? MediaKind::image : MediaKind::video;
}

/// The sorted image files of a frame folder (IoError when it holds none).
inline std::vector<std::filesystem::path> frame_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.' && detail_media::is_image_name(e.path()))
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty())
    throw IoError(jepa::detail::cat("jepa: frame folder '", dir.string(),
                                    "' holds no image files (.png, .jpg, .jpeg, .bmp, .tga, .gif, .ppm, .pgm, .pnm)"));
  return files;
}

/// Loads and preprocesses `path` (any MediaKind).
inline MediaClip load_media(const std::filesystem::path& path, const MediaOptions& opt = {}) {
  opt.validate();
  MediaClip c;
  c.kind = media_kind(path);
  c.source = path.string();
  std::int64_t F = 1;
  std::unique_ptr<detail_media::ClipFiller> out;
  if (c.kind == MediaKind::image) {
    if (opt.start > 0)
      fail_field("MediaOptions.start", opt.start, jepa::detail::cat("'", c.source, "' is an image, a single frame; the window must start at 0"));
    c.indices = {0};
    out = std::make_unique<detail_media::ClipFiller>(opt, 1, c.source);
    RgbFrame im = read_image(c.source);
    out->put(im, {0});
  } else if (c.kind == MediaKind::video) {
    VideoReader vr(c.source, opt.reader);
    std::int64_t len = vr.frame_count();
    if (len <= 0) len = vr.count_frames();
    c.native_fps = vr.fps();
    if (opt.frame_step > 0) c.step = opt.frame_step;
    else if (opt.target_fps > 0) {
      if (!(c.native_fps > 0))
        throw IoError(jepa::detail::cat("jepa: video file '", c.source, "' declares no frame rate, needed for target_fps (use frame_step)"));
      c.step = data::frame_step_for_fps(c.native_fps, opt.target_fps);
    }
    c.indices = detail_media::window(len, opt, c.step, c.source);
    F = static_cast<std::int64_t>(c.indices.size());
    out = std::make_unique<detail_media::ClipFiller>(opt, F, c.source);
    out->start(vr.width(), vr.height());  // the output is checked and allocated before decoding
    vr.visit_frames(c.indices, [&](RgbFrame& fr, const std::vector<std::size_t>& at) { out->put(fr, at); });
  } else {
    const auto files = frame_files(path);
    c.native_fps = opt.folder_fps;
    if (opt.frame_step > 0) c.step = opt.frame_step;
    else if (opt.target_fps > 0) {
      if (!(opt.folder_fps > 0))
        throw ConfigError(jepa::detail::cat("jepa: frame folder '", c.source,
                                            "': target_fps needs MediaOptions.folder_fps (the frames' native rate)"));
      c.step = data::frame_step_for_fps(opt.folder_fps, opt.target_fps);
    }
    c.indices = detail_media::window(static_cast<std::int64_t>(files.size()), opt, c.step, c.source);
    F = static_cast<std::int64_t>(c.indices.size());
    out = std::make_unique<detail_media::ClipFiller>(opt, F, c.source);
    // The window is non-decreasing: each file is read once, for the run of positions that repeat it
    // (the padding of a short folder).
    for (std::size_t k = 0; k < c.indices.size();) {
      std::vector<std::size_t> at{k};
      while (k + at.size() < c.indices.size() && c.indices[k + at.size()] == c.indices[k]) at.push_back(k + at.size());
      const std::string f = files[static_cast<std::size_t>(c.indices[k])].string();
      RgbFrame im = read_image(f);
      if (k > 0 && (im.width != out->source_width() || im.height != out->source_height()))
        throw IoError(jepa::detail::cat("jepa: frame file '", f, "' is ", im.width, "x", im.height,
                                        " but the folder's first sampled frame is ", out->source_width(), "x", out->source_height()));
      out->put(im, at);
      k += at.size();
    }
  }
  c.source_width = out->source_width(), c.source_height = out->source_height();
  c.pixels = out->take(c.height, c.width);
  c.frames = F;
  return c;
}

}  // namespace jepa::io
