// Test helper: sets every field of a message (recursively) to a value that
// is not its default, so a test can tell which fields survive an operation.
#ifndef TCBSCOPE_TESTS_COMMON_EVERY_FIELD_H_
#define TCBSCOPE_TESTS_COMMON_EVERY_FIELD_H_

#include <string>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace tcbscope::testing {

// Scalars get their field number plus `salt` (bools true, enums their last
// value), strings "s<number>", messages are filled, repeated fields get one
// element.
inline void FillEveryField(google::protobuf::Message* m, int salt = 1) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  const google::protobuf::Reflection* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const int v = f->number() + salt;
    const bool rep = f->is_repeated();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: rep ? r->AddInt32(m, f, v) : r->SetInt32(m, f, v); break;
      case FieldDescriptor::CPPTYPE_INT64: rep ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v); break;
      case FieldDescriptor::CPPTYPE_UINT32: rep ? r->AddUInt32(m, f, v) : r->SetUInt32(m, f, v); break;
      case FieldDescriptor::CPPTYPE_UINT64: rep ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v); break;
      case FieldDescriptor::CPPTYPE_DOUBLE: rep ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v); break;
      case FieldDescriptor::CPPTYPE_FLOAT: rep ? r->AddFloat(m, f, v) : r->SetFloat(m, f, v); break;
      case FieldDescriptor::CPPTYPE_BOOL: rep ? r->AddBool(m, f, true) : r->SetBool(m, f, true); break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        const auto* e = f->enum_type()->value(f->enum_type()->value_count() - 1);
        rep ? r->AddEnum(m, f, e) : r->SetEnum(m, f, e);
        break;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        const std::string s = "s" + std::to_string(v);
        rep ? r->AddString(m, f, s) : r->SetString(m, f, s);
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        FillEveryField(rep ? r->AddMessage(m, f) : r->MutableMessage(m, f), salt);
        break;
    }
  }
}

}  // namespace tcbscope::testing

#endif  // TCBSCOPE_TESTS_COMMON_EVERY_FIELD_H_
