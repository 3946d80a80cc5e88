#include "common/connection_fields.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace tcbscope {

bool ClearConnectionField(int number, v1::Connection* c) {
  using C = v1::Connection;
  switch (number) {
    case C::kFamilyFieldNumber: c->clear_family(); return true;
    case C::kLocalFieldNumber: c->clear_local(); return true;
    case C::kRemoteFieldNumber: c->clear_remote(); return true;
    case C::kStateFieldNumber: c->clear_state(); return true;
    case C::kNetnsFieldNumber: c->clear_netns(); return true;
    case C::kInodeFieldNumber: c->clear_inode(); return true;
    case C::kCookieFieldNumber: c->clear_cookie(); return true;
    case C::kUidFieldNumber: c->clear_uid(); return true;
    case C::kOwnersFieldNumber: c->clear_owners(); return true;
    case C::kRecvQFieldNumber: c->clear_recv_q(); return true;
    case C::kSendQFieldNumber: c->clear_send_q(); return true;
    case C::kTimerFieldNumber: c->clear_timer(); return true;
    case C::kCongestionFieldNumber: c->clear_congestion(); return true;
    case C::kMemoryFieldNumber: c->clear_memory(); return true;
    case C::kTcpInfoFieldNumber: c->clear_tcp_info(); return true;
    case C::kSeqFieldNumber: c->clear_seq(); return true;
    case C::kShutdownFieldNumber: c->clear_shutdown(); return true;
    case C::kV6OnlyFieldNumber: c->clear_v6only(); return true;
    case C::kMarkFieldNumber: c->clear_mark(); return true;
    case C::kTosFieldNumber: c->clear_tos(); return true;
    case C::kNetnsNameFieldNumber: c->clear_netns_name(); return true;
    default: return false;
  }
}

absl::StatusOr<ConnectionFields> ConnectionFields::FromMask(const google::protobuf::FieldMask& mask) {
  ConnectionFields f;
  if (mask.paths_size() == 0) return f;
  f.all_ = false;
  const google::protobuf::Descriptor* conn = v1::Connection::descriptor();
  const google::protobuf::Descriptor* info = v1::TcpInfo::descriptor();
  for (const std::string& path : mask.paths()) {
    const absl::string_view p = path;
    const size_t dot = p.find('.');
    const google::protobuf::FieldDescriptor* top = conn->FindFieldByName(std::string(p.substr(0, dot)));
    // Numbers past the bitsets cannot be told apart: refuse rather than
    // drop them (Connection and TcpInfo have fewer than 100 fields).
    if (top == nullptr || top->number() >= kMaxField) {
      return absl::InvalidArgumentError(absl::StrCat("fields: '", p, "' is not a Connection field"));
    }
    f.top_.set(top->number());
    if (dot == absl::string_view::npos) {
      if (top->number() == v1::Connection::kTcpInfoFieldNumber) f.info_.set();
      continue;
    }
    if (top->number() != v1::Connection::kTcpInfoFieldNumber) {
      return absl::InvalidArgumentError(
          absl::StrCat("fields: '", p, "': only tcp_info's fields can be named one by one (tcp_info.FIELD)"));
    }
    const google::protobuf::FieldDescriptor* sub = info->FindFieldByName(std::string(p.substr(dot + 1)));
    if (sub == nullptr || sub->number() >= kMaxField) {
      return absl::InvalidArgumentError(absl::StrCat("fields: '", p, "' is not a TcpInfo field"));
    }
    f.info_.set(sub->number());
  }
  for (int i = 0; i < conn->field_count(); ++i) {
    const int n = conn->field(i)->number();
    if (!f.top_[n]) f.clear_.push_back(n);
  }
  return f;
}

void ConnectionFields::Trim(v1::Connection* c) const {
  for (int n : clear_) ClearConnectionField(n, c);
}

}  // namespace tcbscope
