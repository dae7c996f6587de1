// jepa/dist/mpi.hpp — data-parallel communication over MPI (host buffers: CPU training across
// processes and machines). Opt-in: needs <mpi.h> and libmpi (CMake target jepa::mpi, defined when
// FindMPI finds an MPI; Debian: openmpi-bin libopenmpi-dev). The core jepa::jepa never includes it.
//
//   int main(int argc, char** argv) {
//     jepa::dist::MpiSession mpi(argc, argv);        // MPI_Init_thread … MPI_Finalize
//     jepa::dist::MpiCommunicator world;             // a private duplicate of MPI_COMM_WORLD
//     train::Trainer trainer(model, source, cfg, nullptr, world);   // data-parallel trainer
//     …
//   }
//   mpirun -np 4 ./my_trainer …
//
// node_rank(world) is a rank's index on its machine (the GPU of one-process-per-GPU jobs);
// launched_by_mpi() tells a program whether to start MPI at all; abort_job() ends the whole job from
// a program's top level when a rank fails outside a collective phase.
//
// MpiCommunicator models jepa::dist::Communicator (communicator.hpp): in-place all-reduce (sum, min,
// max), broadcast, barrier, and non-blocking sums (MPI_Iallreduce) that overlap with the backward
// pass. It runs on a duplicate of the given communicator, so the library's collectives never match
// the program's own messages, with MPI_ERRORS_RETURN: every failing MPI call throws CommError naming
// the rank, the call and MPI's error string. Copies share one duplicate (and its pending requests).
// Counts above 2^30 elements are split into several calls (MPI counts are int).
//
// Threads: MPI is initialised with MPI_THREAD_FUNNELED; only the thread that created the session
// calls MPI (OpenMP threads only compute), which is how the trainer uses it.
#pragma once

// The MPI-2 C++ bindings (removed from MPI 3) are not used; skipping them keeps -Wextra quiet.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/dist/communicator.hpp"

namespace jepa::dist {

namespace detail {
template <class>
inline constexpr bool always_false = false;

template <class T>
MPI_Datatype mpi_datatype() {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return MPI_UINT64_T;
  else if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
  else if constexpr (std::is_same_v<T, int>) return MPI_INT;
  else if constexpr (std::is_same_v<T, char>) return MPI_CHAR;
  else if constexpr (std::is_same_v<T, unsigned char>) return MPI_UNSIGNED_CHAR;
  else static_assert(always_false<T>, "jepa: MpiCommunicator has no MPI datatype for this element type "
                                      "(float, double, std::int64_t, std::uint64_t, int, char, unsigned char)");
}
inline MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::sum ? MPI_SUM : op == ReduceOp::min ? MPI_MIN : MPI_MAX; }

inline bool mpi_running() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}
inline std::string mpi_error_string(int rc) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, buf, &len) != MPI_SUCCESS) return jepa::detail::cat("MPI error code ", rc);
  return std::string(buf, static_cast<std::size_t>(len));
}
inline constexpr std::size_t kMpiMaxCount = std::size_t{1} << 30;  // elements per MPI call
}  // namespace detail

/// Initialises MPI for this process (MPI_THREAD_FUNNELED) unless it already is, and finalises it when
/// destroyed if it initialised it. Create one, first thing in main, on every rank.
class MpiSession {
 public:
  MpiSession(int& argc, char**& argv) { init(&argc, &argv); }
  MpiSession() { init(nullptr, nullptr); }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  ~MpiSession() {
    if (owner_ && detail::mpi_running()) MPI_Finalize();
  }
  /// The thread support MPI granted (MPI_THREAD_FUNNELED or more is what training needs).
  int thread_level() const { return provided_; }

 private:
  void init(int* argc, char*** argv) {
    if (detail::mpi_running()) {
      MPI_Query_thread(&provided_);
      return;
    }
    const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided_);
    if (rc != MPI_SUCCESS)
      throw CommError("jepa: MPI_Init_thread failed: " + detail::mpi_error_string(rc) +
                          " (is this program started by mpirun / mpiexec, with an MPI that matches the one it was built with?)",
                      -1);
    owner_ = true;
    if (provided_ < MPI_THREAD_FUNNELED)
      throw CommError(jepa::detail::cat("jepa: MPI granted thread level ", provided_,
                                        "; data-parallel training needs MPI_THREAD_FUNNELED (OpenMP threads compute while "
                                        "the main thread communicates)"),
                      -1);
  }
  bool owner_ = false;
  int provided_ = 0;
};

/// A Communicator over MPI (see the header comment).
class MpiCommunicator {
 public:
  /// A private duplicate of `parent` (MPI_COMM_WORLD by default). MPI must be running (MpiSession).
  explicit MpiCommunicator(MPI_Comm parent = MPI_COMM_WORLD) {
    if (!detail::mpi_running())
      throw ConfigError("jepa: MpiCommunicator needs MPI to be initialised: create a jepa::dist::MpiSession first "
                        "(in main, before any communicator)");
    MPI_Comm dup = MPI_COMM_NULL;
    int world_rank = -1;
    MPI_Comm_rank(parent, &world_rank);
    const int rc = MPI_Comm_dup(parent, &dup);
    if (rc != MPI_SUCCESS)
      throw CommError(jepa::detail::cat("jepa: MPI rank ", world_rank, ": MPI_Comm_dup failed: ", detail::mpi_error_string(rc)),
                      world_rank);
    s_ = std::make_shared<Shared>();
    s_->comm = dup;
    MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
    MPI_Comm_rank(dup, &rank_);
    MPI_Comm_size(dup, &size_);
  }

  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm native() const { return s_->comm; }

  /// p[i] ← op over ranks of p[i], in place.
  template <class T>
  void all_reduce(T* p, std::size_t n, ReduceOp op = ReduceOp::sum) {
    for (std::size_t at = 0; at < n; at += detail::kMpiMaxCount)
      check(MPI_Allreduce(MPI_IN_PLACE, p + at, count(n - at), detail::mpi_datatype<T>(), detail::mpi_op(op), s_->comm),
            "MPI_Allreduce", n, op_name(op));
  }
  /// p[i] ← root's p[i].
  template <class T>
  void broadcast(T* p, std::size_t n, int root) {
    check_field<IndexError>(root >= 0 && root < size_, "broadcast root", root,
                            jepa::detail::cat("must be a rank of this group [0, ", size_, ")"));
    for (std::size_t at = 0; at < n; at += detail::kMpiMaxCount)
      check(MPI_Bcast(p + at, count(n - at), detail::mpi_datatype<T>(), root, s_->comm), "MPI_Bcast", n, "root");
  }
  void barrier() { check(MPI_Barrier(s_->comm), "MPI_Barrier", 0, ""); }

  /// Starts p[i] ← Σ_ranks p[i] (MPI_Iallreduce); p must stay untouched until wait_all().
  template <class T>
  void all_reduce_async(T* p, std::size_t n) {
    for (std::size_t at = 0; at < n; at += detail::kMpiMaxCount) {
      MPI_Request r = MPI_REQUEST_NULL;
      check(MPI_Iallreduce(MPI_IN_PLACE, p + at, count(n - at), detail::mpi_datatype<T>(), MPI_SUM, s_->comm, &r),
            "MPI_Iallreduce", n, "sum");
      s_->pending.push_back(r);
    }
  }
  /// Lets the started reductions advance (MPI progresses non-blocking collectives inside MPI calls).
  void progress() {
    if (s_->pending.empty()) return;
    int done = 0;
    check(MPI_Testall(static_cast<int>(s_->pending.size()), s_->pending.data(), &done, MPI_STATUSES_IGNORE),
          "MPI_Testall", s_->pending.size(), "requests");
    if (done) s_->pending.clear();
  }
  /// Completes every started reduction.
  void wait_all() {
    if (s_->pending.empty()) return;
    std::vector<MPI_Request> reqs;
    reqs.swap(s_->pending);
    check(MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE), "MPI_Waitall", reqs.size(),
          "requests");
  }

 private:
  struct Shared {
    MPI_Comm comm = MPI_COMM_NULL;
    std::vector<MPI_Request> pending;
    Shared() = default;
    Shared(const Shared&) = delete;
    Shared& operator=(const Shared&) = delete;
    ~Shared() {
      if (comm != MPI_COMM_NULL && detail::mpi_running()) {
        for (auto& r : pending)
          if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
        MPI_Comm_free(&comm);
      }
    }
  };

  static int count(std::size_t left) { return static_cast<int>(left < detail::kMpiMaxCount ? left : detail::kMpiMaxCount); }

  void check(int rc, const char* call, std::size_t n, const char* what) const {
    if (rc == MPI_SUCCESS) return;
    throw CommError(jepa::detail::cat("jepa: MPI rank ", rank_, " of ", size_, ": ", call, " (", n, " ", what,
                                      ") failed: ", detail::mpi_error_string(rc)),
                    rank_);
  }

  std::shared_ptr<Shared> s_;
  int rank_ = 0, size_ = 1;
};
static_assert(Communicator<MpiCommunicator>);

/// This process's rank among the ranks of `comm` on the same machine (0 … ranks per node − 1): the
/// GPU a one-process-per-GPU job uses. Collective over `comm` (MPI_Comm_split_type, shared memory).
inline int node_rank(const MpiCommunicator& comm) {
  MPI_Comm node = MPI_COMM_NULL;
  const int rc = MPI_Comm_split_type(comm.native(), MPI_COMM_TYPE_SHARED, comm.rank(), MPI_INFO_NULL, &node);
  if (rc != MPI_SUCCESS)
    throw CommError(jepa::detail::cat("jepa: MPI rank ", comm.rank(), " of ", comm.size(),
                                      ": MPI_Comm_split_type failed: ", detail::mpi_error_string(rc)),
                    comm.rank());
  int r = 0;
  MPI_Comm_rank(node, &r);
  MPI_Comm_free(&node);
  return r;
}

/// True when this process was started by an MPI launcher (mpirun / mpiexec of Open MPI, MPICH or
/// Intel MPI, or a PMIx launcher such as srun --mpi=pmix): a program can then initialise MPI, and run
/// alone without it otherwise.
inline bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

/// Ends the whole MPI job from this rank: prints "error: rank r of n: <what>" on stderr and calls
/// MPI_Abort, which stops every rank (mpirun reports the abort). For a program's top level, after
/// an error that the other ranks cannot know about (one that happened outside the trainer's
/// collective steps, e.g. a bad data path while setting up), so that they are not left waiting
/// forever in a collective. A RankFailure needs no abort: every rank already threw it.
[[noreturn]] inline void abort_job(std::string_view what, int code = 2) {
  int rank = -1, size = 0;
  if (detail::mpi_running()) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  }
  std::fprintf(stderr, "\nerror: rank %d of %d: %.*s\n", rank, size, static_cast<int>(what.size()), what.data());
  std::fflush(stderr);
  if (detail::mpi_running()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; without MPI there is nothing else to stop
}

}  // namespace jepa::dist
