// The valid twin of ko_backend.cpp: the CPU backend satisfies the concept.
#include "jepa/backend/cpu/backend.hpp"
#include "jepa/concepts/backend.hpp"
static_assert(jepa::Backend<jepa::backend::Cpu, float>);
static_assert(jepa::Backend<jepa::backend::Cpu, double>);
static_assert(jepa::detail::check_backend<jepa::backend::Cpu, float>());
