#include "client/render/text_table.h"

#include <algorithm>

namespace tcbscope {

void TextTable::AddRow(std::vector<std::string> cells) { rows_.push_back(Row{std::move(cells), {}}); }

void TextTable::AddDetail(std::string line) {
  if (!rows_.empty()) rows_.back().detail = std::move(line);
}

void TextTable::Print(FILE* out, bool header) const {
  std::vector<size_t> width(columns_.size(), 0);
  if (header) {
    for (size_t c = 0; c < columns_.size(); ++c) width[c] = columns_[c].title.size();
  }
  for (const Row& r : rows_) {
    for (size_t c = 0; c < columns_.size() && c < r.cells.size(); ++c) width[c] = std::max(width[c], r.cells[c].size());
  }
  std::string buf;
  buf.reserve(1 << 16);
  auto emit = [&](const std::vector<std::string>& cells) {
    for (size_t c = 0; c < columns_.size(); ++c) {
      const std::string& cell = c < cells.size() ? cells[c] : std::string();
      const size_t pad = width[c] - std::min(width[c], cell.size());
      const bool last = c + 1 == columns_.size();
      if (columns_[c].align == Align::kRight) buf.append(pad, ' ');
      buf.append(cell);
      if (columns_[c].align == Align::kLeft && !last) buf.append(pad, ' ');
      if (!last) buf.push_back(' ');
    }
    while (!buf.empty() && buf.back() == ' ') buf.pop_back();
    buf.push_back('\n');
  };
  if (header) {
    std::vector<std::string> titles;
    for (const Column& c : columns_) titles.push_back(c.title);
    emit(titles);
  }
  for (const Row& r : rows_) {
    emit(r.cells);
    if (!r.detail.empty()) {
      buf.push_back('\t');
      buf.append(r.detail);
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
