#include "client/render/text_table.h"

#include <algorithm>

namespace tcbscope {

TextTable::TextTable(std::vector<Column> columns) : columns_(std::move(columns)), width_(columns_.size(), 0) {}

void TextTable::AddRow(absl::Span<const absl::string_view> cells) {
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (c < cells.size()) {
      text_.append(cells[c].data(), cells[c].size());
      width_[c] = std::max(width_[c], cells[c].size());
    }
    ends_.push_back(text_.size());
  }
  ends_.push_back(text_.size());  // no detail yet
  ++rows_;
}

void TextTable::AddRow(const std::vector<std::string>& cells) {
  std::vector<absl::string_view> views(cells.begin(), cells.end());
  AddRow(absl::MakeConstSpan(views));
}

void TextTable::AddDetail(absl::string_view line) {
  if (rows_ == 0) return;
  // The detail is the last thing of the last row: drop an earlier one.
  const size_t cells_end = ends_[ends_.size() - 2];
  text_.resize(cells_end);
  text_.append(line.data(), line.size());
  ends_.back() = text_.size();
}

void TextTable::Print(FILE* out, bool header) const {
  std::vector<size_t> width = width_;
  if (header) {
    for (size_t c = 0; c < columns_.size(); ++c) width[c] = std::max(width[c], columns_[c].title.size());
  }
  std::string buf;
  buf.reserve(1 << 16);
  auto cell = [&](size_t c, absl::string_view text) {
    const size_t pad = width[c] - std::min(width[c], text.size());
    const bool last = c + 1 == columns_.size();
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
  size_t begin = 0;
  for (size_t r = 0; r < rows_; ++r) {
    const size_t* ends = &ends_[r * per_row];
    for (size_t c = 0; c < columns_.size(); ++c) {
      cell(c, absl::string_view(text_).substr(begin, ends[c] - begin));
      begin = ends[c];
    }
    end_line();
    if (ends[columns_.size()] > begin) {
      buf.push_back('\t');
      buf.append(text_, begin, ends[columns_.size()] - begin);
      buf.push_back('\n');
      begin = ends[columns_.size()];
    }
    if (buf.size() > (1 << 16)) {
      fwrite(buf.data(), 1, buf.size(), out);
      buf.clear();
    }
  }
  fwrite(buf.data(), 1, buf.size(), out);
}

}  // namespace tcbscope
