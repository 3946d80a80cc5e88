#include "client/render/text_table.h"

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

std::string Render(const TextTable& t, bool header) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  t.Print(f, header);
  fclose(f);
  std::string out(buf, len);
  free(buf);
  return out;
}

TextTable Sample() {
  return TextTable({{"State"}, {"Recv-Q", TextTable::Align::kRight}, {"Local"}});
}

TEST(TextTableTest, ColumnsAreAsWideAsTheirWidestCellOrTitle) {
  TextTable t = Sample();
  t.AddRow({"ESTAB", "0", "127.0.0.1:22"});
  t.AddRow({"LISTEN", "123456789", "[::]:80"});
  EXPECT_EQ(Render(t, true),
            "State     Recv-Q Local\n"
            "ESTAB          0 127.0.0.1:22\n"
            "LISTEN 123456789 [::]:80\n");
  // Without the header its titles do not widen the columns.
  TextTable narrow({{"A-long-title"}, {"B"}});
  narrow.AddRow({"x", "y"});
  EXPECT_EQ(Render(narrow, false), "x y\n");
}

TEST(TextTableTest, DetailFollowsItsRowAndALaterOneReplacesIt) {
  TextTable t = Sample();
  t.AddDetail("before any row: ignored");
  t.AddRow({"ESTAB", "1", "a"});
  t.AddDetail("first");
  t.AddDetail("cubic rtt:1/1");
  t.AddRow({"ESTAB", "2", "b"});
  t.AddRow({"ESTAB", "3", "c"});
  t.AddDetail("third");
  EXPECT_EQ(t.rows(), 3u);
  EXPECT_EQ(Render(t, false),
            "ESTAB 1 a\n\tcubic rtt:1/1\n"
            "ESTAB 2 b\n"
            "ESTAB 3 c\n\tthird\n");
}

TEST(TextTableTest, MissingCellsAreEmptyAndTrailingSpaceIsTrimmed) {
  TextTable t({{"Name"}, {"Value", TextTable::Align::kRight}, {"Note"}});
  t.AddRow({"a", "1", "note"});
  t.AddRow({"group"});
  t.AddRow(std::vector<std::string>{"b", "22", ""});
  EXPECT_EQ(Render(t, true),
            "Name  Value Note\n"
            "a         1 note\n"
            "group\n"
            "b        22\n");
}

TEST(TextTableTest, ManyRowsKeepTheirOrderAcrossOutputChunks) {
  TextTable t({{"N", TextTable::Align::kRight}, {"Text"}});
  std::string expected;
  for (int i = 0; i < 20000; ++i) {
    const std::string n = std::to_string(i), text(i % 7, 'x');
    t.AddRow({n, text});
    if (i % 3 == 0) t.AddDetail(n);
    expected += std::string(5 - n.size(), ' ') + n + (text.empty() ? "" : " " + text) + "\n";
    if (i % 3 == 0) expected += "\t" + n + "\n";
  }
  EXPECT_EQ(Render(t, false), expected);
}

}  // namespace
}  // namespace tcbscope
