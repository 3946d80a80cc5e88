#include "agent/bearer_token.h"

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

TEST(BearerTokenTest, AcceptsOnlyTheExactBearerToken) {
  BearerToken t("0123456789abcdef-token");
  EXPECT_TRUE(t.Accepts("Bearer 0123456789abcdef-token"));
  EXPECT_FALSE(t.Accepts("Bearer 0123456789abcdef-toke"));
  EXPECT_FALSE(t.Accepts("Bearer 0123456789abcdef-token2"));
  EXPECT_FALSE(t.Accepts("Bearer 0123456789abcdef-tokeN"));
  EXPECT_FALSE(t.Accepts("bearer 0123456789abcdef-token"));
  EXPECT_FALSE(t.Accepts("0123456789abcdef-token"));
  EXPECT_FALSE(t.Accepts(""));
  EXPECT_FALSE(t.Accepts("Bearer "));
}

TEST(BearerTokenTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0", 2), "a"));
}

TEST(BearerTokenTest, FileMustHoldALongEnoughToken) {
  EXPECT_FALSE(BearerToken::FromFile("/nonexistent/token").ok());
  EXPECT_FALSE(BearerToken::FromFile("/dev/null").ok());
}

}  // namespace
}  // namespace tcbscope
