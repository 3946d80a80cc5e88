// Column-aligned text output, ss style: each column as wide as its widest
// cell, numbers right-aligned, a free-form line allowed under any row.
#ifndef TCBSCOPE_CLIENT_RENDER_TEXT_TABLE_H_
#define TCBSCOPE_CLIENT_RENDER_TEXT_TABLE_H_

#include <cstdio>
#include <string>
#include <vector>

namespace tcbscope {

class TextTable {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string title;
    Align align = Align::kLeft;
  };

  explicit TextTable(std::vector<Column> columns) : columns_(std::move(columns)) {}

  // REQUIRES: cells.size() == number of columns.
  void AddRow(std::vector<std::string> cells);
  // A line printed verbatim (after a tab) under the last row, e.g. tcp_info.
  void AddDetail(std::string line);

  // Writes the table; without a header when `header` is false.
  void Print(FILE* out, bool header) const;
  size_t rows() const { return rows_.size(); }

 private:
  struct Row {
    std::vector<std::string> cells;
    std::string detail;
  };
  std::vector<Column> columns_;
  std::vector<Row> rows_;
};

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_RENDER_TEXT_TABLE_H_
