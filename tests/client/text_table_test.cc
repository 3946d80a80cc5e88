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

TEST(TextTableTest, RowsAndDetailsLargerThanABlockStayWhole) {
  // Rows whose details outgrow the block they started in move to a new one;
  // one detail is larger than a block on its own.
  TextTable t({{"N"}, {"Text"}});
  std::string expected;
  for (int i = 0; i < 3000; ++i) {
    const std::string n = std::to_string(i);
    t.AddRow({n, "row"});
    const std::string detail = i == 1500 ? std::string(3 << 20, 'd') : std::string(700 + i % 13, 'a' + i % 26);
    t.AddDetail("short, replaced");
    t.AddDetail(detail);
    expected += n + std::string(4 - n.size(), ' ') + " row\n\t" + detail + "\n";
  }
  EXPECT_EQ(Render(t, false), expected);
}

TEST(TextTableTest, AppendTakesTheOtherTablesRowsAndWidths) {
  TextTable a({{"Host"}, {"Netns"}, {"State"}}), b({{"Host"}, {"Netns"}, {"State"}}), empty({{"Host"}, {"Netns"}, {"State"}});
  a.AddRow({"h1", "net:[1]", "ESTAB"});
  b.AddRow({"host-two", "net:[1]", "LISTEN"});
  b.AddDetail("b's detail");
  a.Append(std::move(b));
  a.Append(std::move(empty));
  a.AddRow({"h3", "net:[1]", "CLOSE"});  // after an append: still in order
  EXPECT_EQ(a.rows(), 3u);
  EXPECT_EQ(Render(a, true),
            "Host     Netns   State\n"
            "h1       net:[1] ESTAB\n"
            "host-two net:[1] LISTEN\n\tb's detail\n"
            "h3       net:[1] CLOSE\n");
  a.HideColumn(1);
  EXPECT_EQ(Render(a, false),
            "h1       ESTAB\n"
            "host-two LISTEN\n\tb's detail\n"
            "h3       CLOSE\n");
  a.HideColumn(2);  // the last shown column is then Host: no padding after it
  EXPECT_EQ(Render(a, false), "h1\nhost-two\n\tb's detail\nh3\n");
}

}  // namespace
}  // namespace tcbscope
