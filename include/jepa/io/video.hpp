// jepa/io/video.hpp — decoding video files to RGB frames with FFmpeg (opt-in; not part of jepa.hpp).
//
// VideoReader opens anything libavformat can demux (mp4, avi, mkv, webm, mov, …) and decodes its best
// video stream with libavcodec; frames are converted to RGB24 by libswscale with exactly the
// settings the ffmpeg command line uses for `-pix_fmt rgb24` (bicubic flags, the frame's own
// YCbCr matrix — BT.601 when the file does not say — and its signalled range), so the bytes match
// `ffmpeg -i f -f rawvideo -pix_fmt rgb24`. Programs link libavformat, libavcodec, libswscale and
// libavutil (the jepa::video CMake target, cmake/JepaVideo.cmake).
//
// Frame indices. Frame i is the i-th frame the decoder outputs in presentation order, counted from
// the start of the stream — the same numbering as ffmpeg's `select=eq(n\,i)` and decord's
// `VideoReader[i]` for constant-frame-rate files. When the first requested index lies far ahead of
// the current position the reader seeks to the keyframe at or before it (AVSEEK_FLAG_BACKWARD) and
// numbers the frames after the seek by timestamp, i = round((pts − start_time)·time_base·fps), which
// is exact for constant-frame-rate video; if a seek fails, overshoots, or lands on frames without
// timestamps, the file is reopened and decoded from the start.
//
// Properties. fps() is the stream's average frame rate (avg_frame_rate, then r_frame_rate, then
// libavformat's guess); frame_count() is the container's declared frame count when it has one
// (mp4, mov, avi) and otherwise round(duration·fps) (mkv, webm); frame_count_exact() says which.
// After a read reaches the end of the stream frame_count() becomes the number of frames decoded.
//
// Errors: a missing file, a file that is not a media file, no video stream, no decoder, a read or
// decode error in the middle of the stream, or no decodable frame at all throw jepa::IoError naming
// the file, FFmpeg's error code text (av_strerror) and the last error FFmpeg logged, which often says
// more ("Picture size 30000x30000 is invalid" behind a bare "Device or resource busy"). Frames larger
// than FFmpeg decodes ((W+128)·(H+128) >= 2^28) are reported as such; frames whose decoded copy and
// RGB conversion do not fit in the memory left (jepa/core/memory_budget.hpp) throw jepa::MemoryError
// when the file is opened, before any frame is decoded. Sample aspect ratio and rotation metadata are
// ignored (frames come out at the coded width × height), as decord does.
//
// Memory. visit_frames() hands each decoded frame to a callback and keeps a single full-resolution
// RGB frame, so a caller that shrinks frames as they arrive (jepa/io/media.hpp, jepa/data/folders.hpp)
// never holds more than one; read_frames() returns every requested frame at full resolution.
//
// FFmpeg's log. FFmpeg prints its own lines to stderr for every damaged file (and again at every
// epoch of a training run), duplicating the one error this reader throws. The first VideoReader
// therefore installs a process-wide av_log callback (ffmpeg_log_capture()) that prints nothing and
// keeps, per thread, the last error line for the exception message. JEPA_FFMPEG_LOG=1 in the
// environment also passes every line on to FFmpeg's default logger; a program with its own FFmpeg
// logging installs its callback after the first reader exists.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/memory_budget.hpp"
#include "jepa/io/image.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace jepa::io {

namespace detail_av {
/// FFmpeg's text for an AVERROR code (av_strerror).
inline std::string error_string(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  if (av_strerror(err, buf, sizeof buf) < 0) std::snprintf(buf, sizeof buf, "FFmpeg error %d", err);
  return buf;
}
struct FormatClose { void operator()(AVFormatContext* p) const { avformat_close_input(&p); } };
struct CodecFree { void operator()(AVCodecContext* p) const { avcodec_free_context(&p); } };
struct PacketFree { void operator()(AVPacket* p) const { av_packet_free(&p); } };
struct FrameFree { void operator()(AVFrame* p) const { av_frame_free(&p); } };
struct SwsFree { void operator()(SwsContext* p) const { sws_freeContext(p); } };
using FormatPtr = std::unique_ptr<AVFormatContext, FormatClose>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecFree>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFree>;
using FramePtr = std::unique_ptr<AVFrame, FrameFree>;
using SwsPtr = std::unique_ptr<SwsContext, SwsFree>;

/// The deprecated full-range "J" formats, mapped to their plain equivalents (+ full range), which is
/// what swscale does internally, without its deprecation warning.
inline AVPixelFormat dejpeg(AVPixelFormat f, bool& full_range) {
  switch (f) {
    case AV_PIX_FMT_YUVJ420P: full_range = true; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: full_range = true; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: full_range = true; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: full_range = true; return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: full_range = true; return AV_PIX_FMT_YUV411P;
    default: return f;
  }
}

/// The log lines FFmpeg emitted on this thread. Per thread because data loaders decode on many
/// threads at once; with the default decoder (threads = 1) every line of a read is logged on the
/// thread that reads.
struct LogCapture {
  std::string partial;     // a line still being assembled (av_log may send a line in pieces)
  std::string last_error;  // the last complete line at AV_LOG_ERROR or worse
};
inline LogCapture& log_capture() {
  thread_local LogCapture c;
  return c;
}
inline void log_callback(void* avcl, int level, const char* fmt, va_list vl) {
  static const bool passthrough = [] {
    const char* e = std::getenv("JEPA_FFMPEG_LOG");
    return e && *e && std::strcmp(e, "0") != 0;
  }();
  if (passthrough) {
    va_list copy;
    va_copy(copy, vl);
    av_log_default_callback(avcl, level, fmt, copy);
    va_end(copy);
  }
  if (level > AV_LOG_ERROR) return;  // warnings and chatter: never part of an error message
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, vl);
  LogCapture& c = log_capture();
  c.partial += buf;
  if (!c.partial.empty() && c.partial.back() == '\n') {
    while (!c.partial.empty() && (c.partial.back() == '\n' || c.partial.back() == '\r')) c.partial.pop_back();
    if (!c.partial.empty()) c.last_error = c.partial;
    c.partial.clear();
  }
}
/// The last error line FFmpeg logged on this thread since the previous call (then forgotten).
inline std::string take_logged_error() {
  LogCapture& c = log_capture();
  std::string s = c.last_error.empty() ? c.partial : c.last_error;
  c.last_error.clear();
  c.partial.clear();
  return s;
}
/// Parses FFmpeg's "Picture size WxH is invalid" (av_image_check_size), 0x0 when it is not that line.
inline std::pair<long long, long long> invalid_picture_size(const std::string& line) {
  long long w = 0, h = 0;
  const auto at = line.find("Picture size ");
  if (at == std::string::npos || std::sscanf(line.c_str() + at, "Picture size %lldx%lld is invalid", &w, &h) != 2) return {0, 0};
  return {w, h};
}
/// Why FFmpeg refuses a W×H picture, in words: av_image_check_size allows (W+128)·(H+128) < 2^28.
inline std::string picture_size_limit(long long w, long long h) {
  return jepa::detail::cat("its frames are ", w, "x", h, ", larger than FFmpeg decodes (it allows (width+128)·(height+128) < 2^28 ",
                           "pixels, about 16000x16000 for a square frame); scale the video down first, e.g. ffmpeg -i IN -vf ",
                           "scale=-2:1080 OUT");
}
}  // namespace detail_av

/// Installs jepa's FFmpeg log callback (see the header comment: silent, remembers the last error
/// per thread; JEPA_FFMPEG_LOG=1 also prints). Called by the first VideoReader; idempotent.
inline void ffmpeg_log_capture() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(&detail_av::log_callback); });
}

struct VideoReaderOptions {
  int threads = 1;                 ///< decoder threads (0 = FFmpeg's automatic choice)
  std::int64_t seek_ahead = -1;    ///< seek when the next wanted frame is more than this many frames
                                   ///< ahead; < 0: automatic, max(32, 2·fps)
};

class VideoReader {
 public:
  explicit VideoReader(std::string path, VideoReaderOptions opt = {}) : path_(std::move(path)), opt_(opt) {
    ffmpeg_log_capture();
    open();
  }
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;
  VideoReader(VideoReader&&) noexcept = default;
  VideoReader& operator=(VideoReader&&) noexcept = default;

  const std::string& path() const { return path_; }
  int width() const { return width_; }
  int height() const { return height_; }
  /// Native frame rate in frames per second (0 when the file gives none).
  double fps() const { return fps_; }
  /// Number of frames: declared by the container, else round(duration·fps); 0 when unknown.
  std::int64_t frame_count() const { return frame_count_; }
  /// True when frame_count() was declared by the container or counted by decoding to the end.
  bool frame_count_exact() const { return frame_count_exact_; }
  /// Duration in seconds (stream duration, else container duration; 0 when unknown).
  double duration() const { return duration_; }
  /// Name of the video codec (e.g. "h264", "mjpeg").
  std::string codec_name() const { return avcodec_get_name(codec_->codec_id); }
  /// How many of the frames returned by the last read_frames() call were padding (requested index
  /// at or past the end of the stream, answered with the last frame).
  std::size_t last_padded() const { return last_padded_; }

  /// Counts the frames by demuxing the whole stream (no decoding): the number of video packets,
  /// which equals the number of frames for every common codec. Sets frame_count() (exact) and
  /// returns it. Does not disturb the decoding position.
  std::int64_t count_frames() {
    detail_av::FormatPtr fmt = open_format();
    detail_av::PacketPtr pkt(av_packet_alloc());
    if (!pkt) fail("out of memory allocating a packet", AVERROR(ENOMEM));
    std::int64_t n = 0;
    for (;;) {
      const int r = av_read_frame(fmt.get(), pkt.get());
      if (r == AVERROR_EOF) break;
      if (r < 0) fail("read error while counting frames", r);
      if (pkt->stream_index == stream_index_) ++n;
      av_packet_unref(pkt.get());
    }
    frame_count_ = n;
    frame_count_exact_ = true;
    return n;
  }

  /// Decodes the frames at `indices` (any order, repeats allowed; each >= 0) and returns them in the
  /// same order as RGB24 frames of width() × height(). Frames are decoded sequentially; an index at
  /// or past the end of the stream yields a copy of the last frame of the stream (the recipe's
  /// padding of short videos; counted in last_padded()). Throws IndexError for a negative index and
  /// IoError (naming the file) for read/decode failures or a stream with no decodable frame.
  /// Every frame is held at full resolution: to shrink frames as they are decoded, use visit_frames.
  std::vector<RgbFrame> read_frames(const std::vector<std::int64_t>& indices) {
    std::vector<RgbFrame> out(indices.size());
    visit_frames(indices, [&](const RgbFrame& f, const std::vector<std::size_t>& at) {
      for (const std::size_t k : at) out[k] = f;
    });
    return out;
  }

  /// As read_frames, but each distinct frame is handed to `sink(RgbFrame& frame, const
  /// std::vector<std::size_t>& positions)` as soon as it is decoded — `positions` are the places in
  /// `indices` that ask for it — instead of being collected. Only one full-resolution RGB frame
  /// exists at a time (reused from call to call; the sink may read, modify or move from it). Frames
  /// arrive in increasing index order; the padding frame of a short video comes last, once, with
  /// the positions of every index past the end.
  template <class Sink>
  void visit_frames(const std::vector<std::int64_t>& indices, Sink&& sink) {
    last_padded_ = 0;
    if (indices.empty()) return;
    for (const auto i : indices)
      if (i < 0) fail_field<IndexError>("VideoReader.read_frames index", i, "frame indices must be >= 0 (file '" + path_ + "')");
    std::vector<std::int64_t> targets(indices);
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    std::vector<std::vector<std::size_t>> positions(targets.size());
    for (std::size_t k = 0; k < indices.size(); ++k)
      positions[static_cast<std::size_t>(std::lower_bound(targets.begin(), targets.end(), indices[k]) - targets.begin())].push_back(k);
    detail_av::take_logged_error();  // a message from an earlier, recovered problem is not this read's

    const std::int64_t first = targets.front();
    const std::int64_t pos = last_index_ + 1;  // index of the next frame sequential decoding yields
    const std::int64_t ahead = opt_.seek_ahead >= 0 ? opt_.seek_ahead : std::max<std::int64_t>(32, static_cast<std::int64_t>(2 * fps_));
    if (first < pos) {  // going back: seek when far from the start, else decode from the start
      if (first > ahead) seek(first);
      else reopen();
    } else if (!eof_ && first - pos > ahead) {
      seek(first);
    }

    RgbFrame rgb;  // the one full-resolution frame
    std::size_t t = 0;
    while (t < targets.size() && !eof_) {
      if (!decode_next()) {
        if (just_seeked_) {  // the seek landed at the end of the stream: decode from the start
          reopen();
          continue;
        }
        eof_ = true;
        break;
      }
      std::int64_t idx;
      if (by_pts_) {
        const std::int64_t ts = frame_->best_effort_timestamp;
        if (ts == AV_NOPTS_VALUE) idx = -1;
        else idx = std::max(last_index_ + 1, pts_to_index(ts));
        if (just_seeked_ && (idx < 0 || idx > targets[t])) {
          // The seek landed after the wanted frame, or timestamps are unusable: decode from the start.
          reopen();
          continue;
        }
        if (idx < 0) idx = last_index_ + 1;
      } else {
        idx = last_index_ + 1;
      }
      just_seeked_ = false;
      av_frame_unref(last_.get());
      if (const int r = av_frame_ref(last_.get(), frame_.get()); r < 0) fail("could not reference a decoded frame", r);
      last_index_ = idx;
      bool converted = false;
      while (t < targets.size() && targets[t] <= idx) {
        // Targets the timestamps jumped past (idx beyond them) get this frame too.
        if (!converted) convert_into(frame_.get(), rgb);
        converted = true;
        sink(rgb, static_cast<const std::vector<std::size_t>&>(positions[t]));
        ++t;
      }
    }
    if (eof_) {
      if (last_index_ < 0) no_frame();
      if (frame_count_ != last_index_ + 1 || !frame_count_exact_) {
        frame_count_ = last_index_ + 1;
        frame_count_exact_ = true;
      }
      if (t < targets.size()) {
        std::vector<std::size_t> rest;
        for (; t < targets.size(); ++t) rest.insert(rest.end(), positions[t].begin(), positions[t].end());
        convert_into(last_.get(), rgb);
        sink(rgb, static_cast<const std::vector<std::size_t>&>(rest));
      }
      for (const auto i : indices)
        if (i > last_index_) ++last_padded_;
    }
  }

  /// Decodes every frame (at most `max_frames`) from the start.
  std::vector<RgbFrame> read_all(std::int64_t max_frames = std::numeric_limits<std::int32_t>::max()) {
    std::vector<RgbFrame> out;
    if (last_index_ >= 0 || eof_ || by_pts_) reopen();
    while (static_cast<std::int64_t>(out.size()) < max_frames && decode_next()) {
      ++last_index_;
      out.push_back(convert(frame_.get()));
    }
    if (static_cast<std::int64_t>(out.size()) < max_frames) {
      eof_ = true;
      if (out.empty()) no_frame();
      frame_count_ = static_cast<std::int64_t>(out.size());
      frame_count_exact_ = true;
    }
    return out;
  }

 private:
  std::string where() const {
    return last_index_ < 0 ? std::string("before the first frame") : "after frame " + std::to_string(last_index_);
  }
  /// IoError naming the file, what failed, FFmpeg's code and the last error it logged; a frame size
  /// FFmpeg refuses is said in those words instead.
  [[noreturn]] void fail(const std::string& what, int err) const {
    const std::string logged = detail_av::take_logged_error();
    if (const auto [w, h] = detail_av::invalid_picture_size(logged); w > 0)
      throw IoError(jepa::detail::cat("jepa: video file '", path_, "' cannot be decoded: ", detail_av::picture_size_limit(w, h),
                                      " (FFmpeg: ", what, ": ", detail_av::error_string(err), ")"));
    std::string msg = "jepa: video file '" + path_ + "': " + what + ": " + detail_av::error_string(err);
    if (!logged.empty()) msg += " (FFmpeg: " + logged + ")";
    throw IoError(msg);
  }
  [[noreturn]] void no_frame() const {
    const std::string logged = detail_av::take_logged_error();
    if (const auto [w, h] = detail_av::invalid_picture_size(logged); w > 0)
      throw IoError(jepa::detail::cat("jepa: video file '", path_, "' cannot be decoded: ", detail_av::picture_size_limit(w, h)));
    throw IoError("jepa: video file '" + path_ + "' contains no decodable video frame" + (logged.empty() ? "" : " (FFmpeg: " + logged + ")"));
  }
  /// Refuses frames FFmpeg cannot decode, or whose decoded copy and RGB conversion do not fit in
  /// the memory left: before the first frame is decoded, not by the kernel's OOM killer after.
  void check_frame_size(int w, int h, AVPixelFormat fmt) const {
    if ((static_cast<std::int64_t>(w) + 128) * (static_cast<std::int64_t>(h) + 128) >= (std::int64_t{1} << 28))
      throw IoError(jepa::detail::cat("jepa: video file '", path_, "' cannot be decoded: ", detail_av::picture_size_limit(w, h)));
    const int decoded = fmt != AV_PIX_FMT_NONE ? av_image_get_buffer_size(fmt, w, h, 1) : -1;
    const std::size_t frame = decoded > 0 ? static_cast<std::size_t>(decoded) : bytes_of(w, h, 3);
    // The decoder's frame, the one RGB24 frame visit_frames keeps, and the row padding swscale needs.
    const std::size_t need = frame + bytes_of(w, h, 3) + bytes_of(h, 64);
    require_host_memory(need,
                        jepa::detail::cat("decoding video file '", path_, "' (", w, "x", h,
                                          " frames; one decoded frame and its RGB copy at full resolution)"),
                        "the model needs far fewer pixels: scale the video down first, e.g. ffmpeg -i IN -vf scale=-2:1080 OUT");
  }

  detail_av::FormatPtr open_format() const {
    if (path_.find("://") == std::string::npos) {
      std::error_code ec;
      const auto st = std::filesystem::status(path_, ec);
      if (ec || !std::filesystem::exists(st)) throw IoError("jepa: video file '" + path_ + "' does not exist");
      if (std::filesystem::is_directory(st)) throw IoError("jepa: video path '" + path_ + "' is a directory, not a file");
    }
    AVFormatContext* raw = nullptr;
    if (const int r = avformat_open_input(&raw, path_.c_str(), nullptr, nullptr); r < 0)
      fail("could not open as a media file", r);  // avformat_open_input frees `raw` on failure
    detail_av::FormatPtr fmt(raw);
    if (const int r = avformat_find_stream_info(fmt.get(), nullptr); r < 0) fail("could not read stream information", r);
    return fmt;
  }

  void open() {
    detail_av::take_logged_error();
    fmt_ = open_format();
    const AVCodec* dec = nullptr;
    const int si = av_find_best_stream(fmt_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &dec, 0);
    if (si == AVERROR_STREAM_NOT_FOUND) fail("no video stream", si);
    if (si == AVERROR_DECODER_NOT_FOUND) fail("no decoder available for its video stream", si);
    if (si < 0) fail("could not select a video stream", si);
    stream_index_ = si;
    AVStream* st = fmt_->streams[si];
    if (st->disposition & AV_DISPOSITION_ATTACHED_PIC) fail("its only video stream is an attached picture (cover art)", AVERROR_STREAM_NOT_FOUND);

    codec_.reset(avcodec_alloc_context3(dec));
    if (!codec_) fail("could not allocate a decoder", AVERROR(ENOMEM));
    if (const int r = avcodec_parameters_to_context(codec_.get(), st->codecpar); r < 0) fail("bad codec parameters", r);
    codec_->thread_count = std::max(0, opt_.threads);
    codec_->pkt_timebase = st->time_base;
    if (const int r = avcodec_open2(codec_.get(), dec, nullptr); r < 0) fail("could not open the decoder", r);
    width_ = codec_->width;
    height_ = codec_->height;
    if (width_ <= 0 || height_ <= 0) {
      if (const auto [w, h] = detail_av::invalid_picture_size(detail_av::take_logged_error()); w > 0)
        throw IoError(jepa::detail::cat("jepa: video file '", path_, "' cannot be decoded: ", detail_av::picture_size_limit(w, h)));
      fail("invalid frame size " + std::to_string(width_) + "x" + std::to_string(height_), AVERROR_INVALIDDATA);
    }
    check_frame_size(width_, height_, codec_->pix_fmt);

    AVRational fr = st->avg_frame_rate;
    if (fr.num <= 0 || fr.den <= 0) fr = st->r_frame_rate;
    if (fr.num <= 0 || fr.den <= 0) fr = av_guess_frame_rate(fmt_.get(), st, nullptr);
    if (fr.num <= 0 || fr.den <= 0) fr = AVRational{0, 1};
    fps_q_ = fr;
    fps_ = fr.num > 0 ? av_q2d(fr) : 0.0;
    time_base_ = st->time_base;
    start_pts_ = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) duration_ = static_cast<double>(st->duration) * av_q2d(st->time_base);
    else if (fmt_->duration != AV_NOPTS_VALUE && fmt_->duration > 0) duration_ = static_cast<double>(fmt_->duration) / AV_TIME_BASE;
    else duration_ = 0;
    if (!frame_count_exact_) {  // keep a count established by decoding across reopen()
      if (st->nb_frames > 0) {
        frame_count_ = st->nb_frames;
        frame_count_exact_ = true;
      } else if (duration_ > 0 && fps_ > 0) {
        frame_count_ = std::llround(duration_ * fps_);
      } else {
        frame_count_ = 0;
      }
    }
    pkt_.reset(av_packet_alloc());
    frame_.reset(av_frame_alloc());
    last_.reset(av_frame_alloc());
    if (!pkt_ || !frame_ || !last_) fail("out of memory allocating frames", AVERROR(ENOMEM));
    last_index_ = -1;
    eof_ = flushing_ = by_pts_ = just_seeked_ = false;
  }

  /// Closes and reopens the file: the only rewind that is exact for every container.
  void reopen() {
    sws_.reset();
    codec_.reset();
    fmt_.reset();
    open();
  }

  /// Seeks to the keyframe at or before frame `target`; frames after it are numbered by timestamp.
  void seek(std::int64_t target) {
    if (fps_q_.num <= 0) {
      reopen();
      return;
    }
    const std::int64_t ts = start_pts_ + av_rescale_q(target, av_inv_q(fps_q_), time_base_);
    if (av_seek_frame(fmt_.get(), stream_index_, ts, AVSEEK_FLAG_BACKWARD) < 0) {
      reopen();
      return;
    }
    avcodec_flush_buffers(codec_.get());
    av_frame_unref(last_.get());
    last_index_ = -1;
    eof_ = flushing_ = false;
    by_pts_ = just_seeked_ = true;
  }

  std::int64_t pts_to_index(std::int64_t ts) const {
    return std::llround(static_cast<double>(ts - start_pts_) * av_q2d(time_base_) * fps_);
  }

  /// Decodes the next frame into frame_; false at the end of the stream.
  bool decode_next() {
    for (;;) {
      int r = avcodec_receive_frame(codec_.get(), frame_.get());
      if (r == 0) return true;
      if (r == AVERROR_EOF) return false;
      if (r != AVERROR(EAGAIN)) fail("decode error " + where(), r);
      if (flushing_) return false;
      r = av_read_frame(fmt_.get(), pkt_.get());
      if (r == AVERROR_EOF) {
        flushing_ = true;
        r = avcodec_send_packet(codec_.get(), nullptr);
        if (r < 0 && r != AVERROR_EOF) fail("decoder flush failed", r);
        continue;
      }
      if (r < 0) fail("read error " + where(), r);
      if (pkt_->stream_index != stream_index_) {
        av_packet_unref(pkt_.get());
        continue;
      }
      r = avcodec_send_packet(codec_.get(), pkt_.get());
      av_packet_unref(pkt_.get());
      if (r < 0 && r != AVERROR(EAGAIN)) fail("decode error " + where(), r);
    }
  }

  /// YUV (or any) → RGB24 at width_ × height_, with the matrix and range settings of ffmpeg's scale
  /// filter: the frame's colorspace (BT.601 when unspecified) and its signalled range.
  /// Writes into `out`, reusing its buffer: one full-resolution frame, no scratch copy.
  void convert_into(const AVFrame* f, RgbFrame& out) {
    if (f->width <= 0 || f->height <= 0) fail("decoded a zero-sized frame", AVERROR_INVALIDDATA);
    bool jpeg_range = false;
    const AVPixelFormat src_fmt = detail_av::dejpeg(static_cast<AVPixelFormat>(f->format), jpeg_range);
    SwsContext* c = sws_getCachedContext(sws_.release(), f->width, f->height, src_fmt, width_, height_,
                                         AV_PIX_FMT_RGB24, SWS_BICUBIC, nullptr, nullptr, nullptr);
    sws_.reset(c);
    if (!c) {
      const char* name = av_get_pix_fmt_name(src_fmt);
      fail(std::string("cannot convert pixel format ") + (name ? name : "?") + " to RGB24", AVERROR(EINVAL));
    }
    int *inv_table = nullptr, *table = nullptr;
    int src_full = 0, dst_full = 0, brightness = 0, contrast = 0, saturation = 0;
    if (sws_getColorspaceDetails(c, &inv_table, &src_full, &table, &dst_full, &brightness, &contrast, &saturation) >= 0) {
      const int* coeffs = sws_getCoefficients(f->colorspace);
      if (jpeg_range) src_full = 1;
      else if (f->color_range != AVCOL_RANGE_UNSPECIFIED) src_full = f->color_range == AVCOL_RANGE_JPEG;
      sws_setColorspaceDetails(c, coeffs, src_full, coeffs, dst_full, brightness, contrast, saturation);
    }
    // Scale with a 64-byte row stride and slack at the end (swscale's SIMD may write past a row),
    // then pack the rows in place. The buffer keeps its capacity, so the next frame reuses it.
    const int stride = (width_ * 3 + 63) / 64 * 64;
    const std::size_t row_bytes = static_cast<std::size_t>(width_) * 3;
    out.width = width_;
    out.height = height_;
    out.rgb.resize(static_cast<std::size_t>(stride) * static_cast<std::size_t>(height_) + 64);
    std::uint8_t* dst[4] = {out.rgb.data(), nullptr, nullptr, nullptr};
    const int dst_stride[4] = {stride, 0, 0, 0};
    const int rows = sws_scale(c, f->data, f->linesize, 0, f->height, dst, dst_stride);
    if (rows != height_) fail("pixel format conversion failed", rows < 0 ? rows : AVERROR_BUG);
    for (int y = 1; y < height_; ++y)  // rows move to lower addresses: memmove handles the overlap
      std::memmove(out.rgb.data() + static_cast<std::size_t>(y) * row_bytes,
                   out.rgb.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(stride), row_bytes);
    out.rgb.resize(row_bytes * static_cast<std::size_t>(height_));
  }
  RgbFrame convert(const AVFrame* f) {
    RgbFrame out;
    convert_into(f, out);
    return out;
  }

  std::string path_;
  VideoReaderOptions opt_;
  detail_av::FormatPtr fmt_;
  detail_av::CodecPtr codec_;
  detail_av::PacketPtr pkt_;
  detail_av::FramePtr frame_, last_;  // last_: a reference to the most recently decoded frame
  detail_av::SwsPtr sws_;
  int stream_index_ = -1;
  int width_ = 0, height_ = 0;
  AVRational fps_q_{0, 1}, time_base_{1, 1};
  double fps_ = 0, duration_ = 0;
  std::int64_t start_pts_ = 0, frame_count_ = 0;
  bool frame_count_exact_ = false;
  std::int64_t last_index_ = -1;  // index of the frame in last_ (−1: none since open/seek)
  bool eof_ = false, flushing_ = false, by_pts_ = false, just_seeked_ = false;
  std::size_t last_padded_ = 0;
};

}  // namespace jepa::io
