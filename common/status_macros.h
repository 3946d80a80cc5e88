// Early-return helpers for absl::Status / absl::StatusOr (Abseil 20220623 has
// none of its own).
//
//   TCB_RETURN_IF_ERROR(DoThing());
//   TCB_ASSIGN_OR_RETURN(auto value, ComputeValue());
//
// Both evaluate their argument exactly once and return the error unchanged.
#ifndef TCBSCOPE_COMMON_STATUS_MACROS_H_
#define TCBSCOPE_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TCB_STATUS_CONCAT_INNER_(a, b) a##b
#define TCB_STATUS_CONCAT_(a, b) TCB_STATUS_CONCAT_INNER_(a, b)

#define TCB_RETURN_IF_ERROR(expr)                \
  do {                                           \
    ::absl::Status tcb_status_ = (expr);         \
    if (!tcb_status_.ok()) return tcb_status_;   \
  } while (0)

#define TCB_ASSIGN_OR_RETURN(lhs, expr) \
  TCB_ASSIGN_OR_RETURN_IMPL_(TCB_STATUS_CONCAT_(tcb_statusor_, __LINE__), lhs, expr)

#define TCB_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                               \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(statusor).value()

#endif  // TCBSCOPE_COMMON_STATUS_MACROS_H_
