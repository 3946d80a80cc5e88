// Column-aligned text output, ss style: each column as wide as its widest
// cell, numbers right-aligned, a free-form line allowed under any row.
//
// A table of 100k rows is held as blocks of text and an array of offsets,
// not a string per cell: allocating and freeing ~800k small strings was a
// fifth of `tcbscope list`'s CPU (docs/performance.md). The blocks are
// never moved or regrown, and Append takes another table's blocks as they
// are; a big table's blocks are on huge pages (client/large_blocks.h). Not
// thread-safe; cells are copied, so the views passed in need live
// only for the call.
#ifndef TCBSCOPE_CLIENT_RENDER_TEXT_TABLE_H_
#define TCBSCOPE_CLIENT_RENDER_TEXT_TABLE_H_

#include <cstdio>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/large_blocks.h"

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
  // Moves other's rows after this table's. REQUIRES: the same columns.
  void Append(TextTable&& other);
  // Room for `rows` rows' bookkeeping at once (a hint: more may follow).
  void Reserve(size_t rows);
  // The column is left out of Print (its cells are kept).
  void HideColumn(size_t column);

  // Writes the table; without a header when `header` is false.
  void Print(FILE* out, bool header) const;
  size_t rows() const { return rows_; }

 private:
  // Makes room for `n` more bytes of the current row, which has `row_bytes`
  // so far; returns where they go. A row never spans two blocks.
  char* Room(size_t row_bytes, size_t n);

  std::vector<Column> columns_;
  std::vector<bool> hidden_;
  std::vector<size_t> width_;  // the widest cell of each column so far
  struct FreeBlock {
    size_t size;
    void operator()(char* p) const;
  };
  std::vector<std::unique_ptr<char, FreeBlock>> blocks_;
  size_t block_used_ = 0, block_size_ = 0;  // of blocks_.back()
  // Per row: where its text starts (its cells, then its detail) and, for
  // each cell and then the detail, where it ends, from that start.
  std::vector<const char*, LargeBlockAllocator<const char*>> row_text_;
  std::vector<uint32_t, LargeBlockAllocator<uint32_t>> ends_;
  size_t rows_ = 0;
};

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_RENDER_TEXT_TABLE_H_
