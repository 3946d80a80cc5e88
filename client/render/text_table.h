// Column-aligned text output, ss style: each column as wide as its widest
// cell, numbers right-aligned, a free-form line allowed under any row.
//
// A table of 100k rows is held as one buffer of text and one array of
// offsets, not a string per cell: allocating and freeing ~800k small strings
// was a fifth of `tcbscope list`'s CPU (docs/performance.md). Not
// thread-safe; cells are copied, so the views passed in need live only for
// the call.
#ifndef TCBSCOPE_CLIENT_RENDER_TEXT_TABLE_H_
#define TCBSCOPE_CLIENT_RENDER_TEXT_TABLE_H_

#include <cstdio>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tcbscope {

class TextTable {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string title;
    Align align = Align::kLeft;
  };

  explicit TextTable(std::vector<Column> columns);

  // REQUIRES: cells.size() <= number of columns (missing cells are empty).
  void AddRow(absl::Span<const absl::string_view> cells);
  void AddRow(std::initializer_list<absl::string_view> cells) { AddRow(absl::MakeConstSpan(cells.begin(), cells.size())); }
  void AddRow(const std::vector<std::string>& cells);
  // A line printed verbatim (after a tab) under the last row, e.g. tcp_info;
  // replaces that row's earlier detail. Ignored before the first row.
  void AddDetail(absl::string_view line);

  // Writes the table; without a header when `header` is false.
  void Print(FILE* out, bool header) const;
  size_t rows() const { return rows_; }

 private:
  std::vector<Column> columns_;
  std::vector<size_t> width_;  // the widest cell of each column so far
  // Every row's cells and then its detail, back to back, and where each of
  // them ends: columns_.size() + 1 offsets per row.
  std::string text_;
  std::vector<size_t> ends_;
  size_t rows_ = 0;
};

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_RENDER_TEXT_TABLE_H_
