#include "client/completion_thread.h"

namespace tcbscope {

CompletionThread::CompletionThread()
    : thread_([this] {
        void* tag = nullptr;
        bool ok = false;
        while (cq_.Next(&tag, &ok)) static_cast<Tag*>(tag)->Done(ok);
      }) {}

CompletionThread::~CompletionThread() {
  cq_.Shutdown();
  thread_.join();
}

}  // namespace tcbscope
