// ConnectionFields: the field mask of ListConnectionsRequest, checked and
// applied.
#include "common/connection_fields.h"

#include "gtest/gtest.h"
#include "tests/common/every_field.h"

namespace tcbscope {
namespace {

google::protobuf::FieldMask Mask(std::initializer_list<const char*> paths) {
  google::protobuf::FieldMask m;
  for (const char* p : paths) m.add_paths(p);
  return m;
}

TEST(ConnectionFieldsTest, AnEmptyMaskIsEveryField) {
  absl::StatusOr<ConnectionFields> f = ConnectionFields::FromMask(google::protobuf::FieldMask());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->all());
  EXPECT_TRUE(f->Has(v1::Connection::kMemoryFieldNumber));
  EXPECT_TRUE(f->HasTcpInfo(v1::TcpInfo::kPmtuFieldNumber));
  v1::Connection c;
  testing::FillEveryField(&c);
  const std::string before = c.SerializeAsString();
  f->Trim(&c);
  EXPECT_EQ(c.SerializeAsString(), before);
}

TEST(ConnectionFieldsTest, KeepsWhatIsNamed) {
  absl::StatusOr<ConnectionFields> f =
      ConnectionFields::FromMask(Mask({"local", "seq", "tcp_info.rtt_us", "tcp_info.snd_wnd"}));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE(f->all());
  EXPECT_TRUE(f->Has(v1::Connection::kLocalFieldNumber));
  EXPECT_TRUE(f->Has(v1::Connection::kTcpInfoFieldNumber)) << "a tcp_info field brings tcp_info";
  EXPECT_FALSE(f->Has(v1::Connection::kRemoteFieldNumber));
  EXPECT_TRUE(f->HasTcpInfo(v1::TcpInfo::kRttUsFieldNumber));
  EXPECT_TRUE(f->HasTcpInfo(v1::TcpInfo::kSndWndFieldNumber));
  EXPECT_FALSE(f->HasTcpInfo(v1::TcpInfo::kRcvWndFieldNumber));

  v1::Connection c;
  testing::FillEveryField(&c);
  f->Trim(&c);
  EXPECT_TRUE(c.has_local());
  EXPECT_TRUE(c.has_seq());
  EXPECT_TRUE(c.has_tcp_info()) << "Trim leaves tcp_info's fields to the filler";
  EXPECT_FALSE(c.has_remote());
  EXPECT_FALSE(c.has_memory());
  EXPECT_EQ(c.cookie(), 0u);
  EXPECT_TRUE(c.congestion().empty());
  EXPECT_EQ(c.owners_size(), 0);
  EXPECT_EQ(c.state(), v1::TCP_STATE_UNSPECIFIED);
}

TEST(ConnectionFieldsTest, TcpInfoAloneIsAllOfIt) {
  absl::StatusOr<ConnectionFields> f = ConnectionFields::FromMask(Mask({"tcp_info"}));
  ASSERT_TRUE(f.ok()) << f.status();
  for (int i = 0; i < v1::TcpInfo::descriptor()->field_count(); ++i) {
    EXPECT_TRUE(f->HasTcpInfo(v1::TcpInfo::descriptor()->field(i)->number()));
  }
  EXPECT_FALSE(f->Has(v1::Connection::kLocalFieldNumber));
}

TEST(ConnectionFieldsTest, UnknownPathsAreRefusedByName) {
  for (const char* bad : {"locall", "tcp_info.rtt", "local.address", "", "tcp_info.", ".local"}) {
    absl::StatusOr<ConnectionFields> f = ConnectionFields::FromMask(Mask({"local", bad}));
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(f.status().message().find(std::string("'") + bad + "'"), std::string::npos) << f.status();
  }
}

TEST(ConnectionFieldsTest, EveryConnectionFieldCanBeCleared) {
  // A field added to Connection without a case in ClearConnectionField would
  // be sent to a caller that did not ask for it.
  const google::protobuf::Descriptor* d = v1::Connection::descriptor();
  const google::protobuf::Reflection* r = v1::Connection::GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    v1::Connection c;
    testing::FillEveryField(&c);
    ASSERT_TRUE(ClearConnectionField(f->number(), &c)) << f->name();
    if (f->is_repeated()) {
      EXPECT_EQ(r->FieldSize(c, f), 0) << f->name();
    } else {
      EXPECT_FALSE(r->HasField(c, f)) << f->name();
    }
  }
  v1::Connection c;
  EXPECT_FALSE(ClearConnectionField(999, &c));
}

}  // namespace
}  // namespace tcbscope
