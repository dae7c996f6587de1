// jepa/dist/communicator.hpp — the Communicator concept of data-parallel training, the one-process
// communicator, and the errors of distributed runs.
//
// A communicator is a group of `size()` processes ("ranks", numbered 0 … size−1) that run the same
// program in lock-step (SPMD). Every collective below must be called by every rank of the group, in
// the same order, with the same counts:
//   all_reduce(p, n, op)        p[i] ← op over ranks of p[i]        (in place; op = sum, min, max)
//   broadcast(p, n, root)       p[i] ← root's p[i]
//   barrier()                   returns once every rank has entered it
//   all_reduce_async(p, n)      starts p[i] ← Σ_ranks p[i]; p must not be touched until wait_all()
//   progress()                  lets started reductions advance (cheap; call it now and then)
//   wait_all()                  completes every started reduction, in the order they were started
// Implementations: SelfCommunicator (one process; every collective is the identity, so a
// data-parallel run of world size 1 is bitwise the single-process run), MpiCommunicator
// (jepa/dist/mpi.hpp: host buffers, CPU training across processes and machines) and
// NcclCommunicator (jepa/dist/nccl.cuh: device buffers, one process per GPU); AnyCommunicator holds
// any of them behind one type, chosen at run time.
//
// Errors: a failing engine call throws CommError naming the engine, the rank and the call; a rank
// that fails inside a data-parallel training step makes every rank throw RankFailure naming it
// (jepa/train/trainer.hpp), so no rank is left waiting in a collective.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "jepa/core/error.hpp"

namespace jepa::dist {

enum class ReduceOp { sum, min, max };

inline const char* op_name(ReduceOp op) {
  return op == ReduceOp::sum ? "sum" : op == ReduceOp::min ? "min" : "max";
}

/// A collective operation or the engine behind it (MPI, NCCL, CUDA) failed on this rank.
class CommError : public Error {
 public:
  CommError(const std::string& what, int rank) : Error(what), rank_(rank) {}
  /// The rank that raised it (this process).
  int rank() const { return rank_; }

 private:
  int rank_;
};

/// Another rank (or this one) failed during a collective phase of training, and every rank of the
/// group now knows. The message names the failing rank and carries its own error message; on the
/// failing rank the original exception is nested (std::rethrow_if_nested).
class RankFailure : public CommError {
 public:
  RankFailure(const std::string& what, int rank, int failed_rank, std::string reason)
      : CommError(what, rank), failed_(failed_rank), reason_(std::move(reason)) {}
  /// The rank whose error stopped the group.
  int failed_rank() const { return failed_; }
  /// True on the rank that failed: that is the rank that should print the message.
  bool is_origin() const { return failed_ == rank(); }
  /// The failing rank's own error message.
  const std::string& reason() const { return reason_; }

 private:
  int failed_;
  std::string reason_;
};

/// What data-parallel training needs from a communication engine (see the header comment).
template <class C>
concept Communicator = std::copy_constructible<C> &&
    requires(C& c, const C& cc, float* f, double* d, std::uint64_t* u, char* ch, std::size_t n, int root) {
      { cc.rank() } -> std::convertible_to<int>;
      { cc.size() } -> std::convertible_to<int>;
      c.all_reduce(f, n, ReduceOp::sum);
      c.all_reduce(d, n, ReduceOp::sum);
      c.all_reduce(u, n, ReduceOp::max);
      c.broadcast(f, n, root);
      c.broadcast(d, n, root);
      c.broadcast(u, n, root);
      c.broadcast(ch, n, root);
      c.barrier();
      c.all_reduce_async(f, n);
      c.all_reduce_async(d, n);
      c.progress();
      c.wait_all();
    };

/// The group of one process: every collective leaves its buffer as it is.
struct SelfCommunicator {
  static constexpr int rank() { return 0; }
  static constexpr int size() { return 1; }
  template <class T>
  void all_reduce(T*, std::size_t, ReduceOp = ReduceOp::sum) {}
  template <class T>
  void broadcast(T*, std::size_t, int root) {
    check_field<IndexError>(root == 0, "broadcast root", root, "a one-process group has only rank 0");
  }
  void barrier() {}
  template <class T>
  void all_reduce_async(T*, std::size_t) {}
  void progress() {}
  void wait_all() {}
};
static_assert(Communicator<SelfCommunicator>);

/// Any Communicator behind one type, chosen at run time (a program that runs alone or under mpirun
/// instantiates its trainer once). Element types: float, double, std::uint64_t, char; one virtual call
/// per collective. Copies share the wrapped communicator. Default: a SelfCommunicator.
class AnyCommunicator {
  struct Iface {
    virtual ~Iface() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    virtual void all_reduce(float*, std::size_t, ReduceOp) = 0;
    virtual void all_reduce(double*, std::size_t, ReduceOp) = 0;
    virtual void all_reduce(std::uint64_t*, std::size_t, ReduceOp) = 0;
    virtual void broadcast(float*, std::size_t, int) = 0;
    virtual void broadcast(double*, std::size_t, int) = 0;
    virtual void broadcast(std::uint64_t*, std::size_t, int) = 0;
    virtual void broadcast(char*, std::size_t, int) = 0;
    virtual void barrier() = 0;
    virtual void all_reduce_async(float*, std::size_t) = 0;
    virtual void all_reduce_async(double*, std::size_t) = 0;
    virtual void progress() = 0;
    virtual void wait_all() = 0;
  };
  template <class C>
  struct Impl final : Iface {
    C c;
    explicit Impl(C x) : c(std::move(x)) {}
    int rank() const override { return c.rank(); }
    int size() const override { return c.size(); }
    void all_reduce(float* p, std::size_t n, ReduceOp op) override { c.all_reduce(p, n, op); }
    void all_reduce(double* p, std::size_t n, ReduceOp op) override { c.all_reduce(p, n, op); }
    void all_reduce(std::uint64_t* p, std::size_t n, ReduceOp op) override { c.all_reduce(p, n, op); }
    void broadcast(float* p, std::size_t n, int root) override { c.broadcast(p, n, root); }
    void broadcast(double* p, std::size_t n, int root) override { c.broadcast(p, n, root); }
    void broadcast(std::uint64_t* p, std::size_t n, int root) override { c.broadcast(p, n, root); }
    void broadcast(char* p, std::size_t n, int root) override { c.broadcast(p, n, root); }
    void barrier() override { c.barrier(); }
    void all_reduce_async(float* p, std::size_t n) override { c.all_reduce_async(p, n); }
    void all_reduce_async(double* p, std::size_t n) override { c.all_reduce_async(p, n); }
    void progress() override { c.progress(); }
    void wait_all() override { c.wait_all(); }
  };
  std::shared_ptr<Iface> p_;

 public:
  AnyCommunicator() : p_(std::make_shared<Impl<SelfCommunicator>>(SelfCommunicator{})) {}
  // (The self-type test comes first: checking Communicator<AnyCommunicator> itself would recurse.)
  template <class C>
    requires(!std::is_same_v<std::remove_cvref_t<C>, AnyCommunicator> && Communicator<C>)
  AnyCommunicator(C c) : p_(std::make_shared<Impl<C>>(std::move(c))) {}  // NOLINT: implicit by design

  int rank() const { return p_->rank(); }
  int size() const { return p_->size(); }
  template <class T>
  void all_reduce(T* p, std::size_t n, ReduceOp op = ReduceOp::sum) {
    p_->all_reduce(p, n, op);
  }
  template <class T>
  void broadcast(T* p, std::size_t n, int root) {
    p_->broadcast(p, n, root);
  }
  void barrier() { p_->barrier(); }
  template <class T>
  void all_reduce_async(T* p, std::size_t n) {
    p_->all_reduce_async(p, n);
  }
  void progress() { p_->progress(); }
  void wait_all() { p_->wait_all(); }
};
static_assert(Communicator<AnyCommunicator>);

}  // namespace jepa::dist
