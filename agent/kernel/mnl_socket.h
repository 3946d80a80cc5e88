// An owned libmnl socket: closed when the owner goes.
#ifndef TCBSCOPE_AGENT_KERNEL_MNL_SOCKET_H_
#define TCBSCOPE_AGENT_KERNEL_MNL_SOCKET_H_

#include <libmnl/libmnl.h>

#include <memory>

namespace tcbscope::kernel {

struct MnlSocketCloser {
  void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};
using MnlSocket = std::unique_ptr<mnl_socket, MnlSocketCloser>;

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_MNL_SOCKET_H_
