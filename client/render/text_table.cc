#include "client/render/text_table.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "client/large_blocks.h"

namespace tcbscope {

TextTable::TextTable(std::vector<Column> columns)
    : columns_(std::move(columns)), hidden_(columns_.size(), false), width_(columns_.size(), 0) {}

namespace {
// A table of a few rows (one of many hosts) takes 16 KiB. Blocks then grow
// fourfold to 256 KiB and go to 2 MiB, on huge pages: doubling up to them
// had touched ~2 MiB of 4 KiB pages first (each a few µs to fault in here),
// while a medium table (a fan-out of hosts with a thousand rows each) should
// not take a huge page per host.
constexpr size_t kFirstBlockSize = 16 << 10;
constexpr size_t kLastSmallBlockSize = 256 << 10;
constexpr size_t kBlockSize = kLargeBlockMinimum;
}  // namespace

void TextTable::FreeBlock::operator()(char* p) const { FreeLargeBlock(p, size); }

char* TextTable::Room(size_t row_bytes, size_t n) {
  if (!blocks_.empty() && block_size_ - block_used_ >= n) return blocks_.back().get() + block_used_;
  // A new block; the row's bytes so far move with it.
  const size_t next = blocks_.empty()                        ? kFirstBlockSize
                      : block_size_ >= kLastSmallBlockSize ? kBlockSize
                                                           : 4 * block_size_;
  const size_t size = std::max(next, row_bytes + n);
  std::unique_ptr<char, FreeBlock> block(static_cast<char*>(AllocateLargeBlock(size)), FreeBlock{size});
  if (block == nullptr) throw std::bad_alloc();
  char* text = block.get();
  blocks_.push_back(std::move(block));
  if (row_bytes > 0) {
    memcpy(text, row_text_.back(), row_bytes);
    row_text_.back() = text;
  }
  block_size_ = size;
  block_used_ = row_bytes;
  return text + block_used_;
}

void TextTable::AddRow(absl::Span<const absl::string_view> cells) {
  size_t total = 0;
  for (size_t c = 0; c < columns_.size() && c < cells.size(); ++c) total += cells[c].size();
  char* p = Room(0, total);
  row_text_.push_back(p);
  size_t at = 0;
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (c < cells.size()) {
      memcpy(p + at, cells[c].data(), cells[c].size());
      at += cells[c].size();
      width_[c] = std::max(width_[c], cells[c].size());
    }
    ends_.push_back(static_cast<uint32_t>(at));
  }
  ends_.push_back(static_cast<uint32_t>(at));  // no detail yet
  block_used_ += at;
  ++rows_;
}

void TextTable::AddRow(const std::vector<std::string>& cells) {
  std::vector<absl::string_view> views(cells.begin(), cells.end());
  AddRow(absl::MakeConstSpan(views));
}

void TextTable::AddDetail(absl::string_view line) {
  if (rows_ == 0) return;
  // The last row is the last thing in the last block: drop its earlier
  // detail, then add this one after its cells.
  const size_t cells = ends_[ends_.size() - 2];
  const size_t old_detail = ends_.back() - cells;
  block_used_ -= old_detail;
  char* p = Room(cells, line.size());
  memcpy(p, line.data(), line.size());
  block_used_ += line.size();
  ends_.back() = static_cast<uint32_t>(cells + line.size());
}

void TextTable::Append(TextTable&& other) {
  if (!other.blocks_.empty()) {
    for (auto& b : other.blocks_) blocks_.push_back(std::move(b));
    // Later rows go to other's last block, whose fill level comes along.
    block_used_ = other.block_used_;
    block_size_ = other.block_size_;
  }
  row_text_.insert(row_text_.end(), other.row_text_.begin(), other.row_text_.end());
  ends_.insert(ends_.end(), other.ends_.begin(), other.ends_.end());
  for (size_t c = 0; c < columns_.size() && c < other.width_.size(); ++c) {
    width_[c] = std::max(width_[c], other.width_[c]);
  }
  rows_ += other.rows_;
  other.blocks_.clear();
  other.row_text_.clear();
  other.ends_.clear();
  other.rows_ = 0;
  other.block_used_ = other.block_size_ = 0;
}

void TextTable::Reserve(size_t rows) {
  row_text_.reserve(row_text_.size() + rows);
  ends_.reserve(ends_.size() + rows * (columns_.size() + 1));
}

void TextTable::HideColumn(size_t column) {
  if (column < hidden_.size()) hidden_[column] = true;
}

void TextTable::Print(FILE* out, bool header) const {
  std::vector<size_t> width = width_;
  if (header) {
    for (size_t c = 0; c < columns_.size(); ++c) width[c] = std::max(width[c], columns_[c].title.size());
  }
  size_t last_shown = 0;
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (!hidden_[c]) last_shown = c;
  }
  std::string buf;
  buf.reserve(1 << 16);
  auto cell = [&](size_t c, absl::string_view text) {
    if (hidden_[c]) return;
    const size_t pad = width[c] - std::min(width[c], text.size());
    const bool last = c == last_shown;
    if (columns_[c].align == Align::kRight) buf.append(pad, ' ');
    buf.append(text.data(), text.size());
    if (columns_[c].align == Align::kLeft && !last) buf.append(pad, ' ');
    if (!last) buf.push_back(' ');
  };
  auto end_line = [&] {
    while (!buf.empty() && buf.back() == ' ') buf.pop_back();
    buf.push_back('\n');
  };
  if (header) {
    for (size_t c = 0; c < columns_.size(); ++c) cell(c, columns_[c].title);
    end_line();
  }
  const size_t per_row = columns_.size() + 1;
  for (size_t r = 0; r < rows_; ++r) {
    const char* text = row_text_[r];
    const uint32_t* ends = &ends_[r * per_row];
    size_t begin = 0;
    for (size_t c = 0; c < columns_.size(); ++c) {
      cell(c, absl::string_view(text + begin, ends[c] - begin));
      begin = ends[c];
    }
    end_line();
    if (ends[columns_.size()] > begin) {
      buf.push_back('\t');
      buf.append(text + begin, ends[columns_.size()] - begin);
      buf.push_back('\n');
    }
    if (buf.size() > (1 << 16)) {
      fwrite(buf.data(), 1, buf.size(), out);
      buf.clear();
    }
  }
  fwrite(buf.data(), 1, buf.size(), out);
}

}  // namespace tcbscope
