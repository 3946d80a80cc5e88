#include "client/render/seq_svg.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/render/connection_text.h"
#include "common/seq_space.h"
#include "common/tcp_state.h"

namespace tcbscope {
namespace {

constexpr double kLeft = 170;      // room for the lane labels
constexpr double kAxisWidth = 700;
constexpr double kBarHeight = 22;
constexpr double kLaneHeight = 120;
constexpr double kWidth = kLeft + kAxisWidth + 40;

std::string Escape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

struct Region {
  const char* name;   // data-region
  const char* label;  // what a person reads
  const char* fill;
  int64_t from, to;   // relative to the lane's origin, in bytes
};

// One direction's lane: sender above, receiver below, one scale.
void Lane(const v1::Connection& snd, const v1::Connection& rcv, const std::string& sname, const std::string& rname,
          double top, std::string* svg) {
  const v1::SequenceSpace& s = snd.seq();
  const v1::SequenceSpace& r = rcv.seq();
  // Everything relative to the sender's snd_una; serial differences keep the
  // wrap out of the picture.
  const uint32_t origin = s.snd_una();
  auto rel = [&](uint32_t x) { return SeqDiff(x, origin); };
  const std::vector<Region> sender = {
      {"sender-in-flight", "in flight", "#f4a261", 0, rel(s.snd_nxt())},
      {"sender-unsent", "unsent", "#c9c9c9", rel(s.snd_nxt()), rel(s.write_seq())},
  };
  const std::vector<Region> receiver = {
      {"receiver-unread", "unread", "#6fa8dc", rel(r.copied_seq()), rel(r.rcv_nxt())},
      {"receiver-window", "window", "#b6d7a8", rel(r.rcv_nxt()), rel(r.rcv_wup() + r.rcv_wnd())},
  };
  int64_t lo = 0, hi = 1;
  for (const auto* set : {&sender, &receiver}) {
    for (const Region& g : *set) {
      lo = std::min({lo, g.from, g.to});
      hi = std::max({hi, g.from, g.to});
    }
  }
  const double scale = kAxisWidth / static_cast<double>(hi - lo);
  auto x = [&](int64_t v) { return kLeft + static_cast<double>(v - lo) * scale; };
  absl::StrAppendFormat(svg, "<text x=\"10\" y=\"%.1f\" font-weight=\"bold\">%s → %s</text>\n", top + 14,
                        Escape(sname), Escape(rname));
  auto bar = [&](const std::vector<Region>& set, double y, const std::string& who) {
    absl::StrAppendFormat(svg, "<text x=\"10\" y=\"%.1f\">%s</text>\n", y + 15, Escape(who));
    absl::StrAppendFormat(svg, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>\n", kLeft,
                          y + kBarHeight, kLeft + kAxisWidth, y + kBarHeight);
    for (const Region& g : set) {
      const int64_t bytes = std::max<int64_t>(0, g.to - g.from);
      absl::StrAppendFormat(svg,
                            "<rect data-region=\"%s\" data-bytes=\"%d\" x=\"%.4f\" y=\"%.1f\" width=\"%.4f\" "
                            "height=\"%.1f\" fill=\"%s\" stroke=\"#555\" stroke-width=\"0.5\"><title>%s: %d bytes"
                            "</title></rect>\n",
                            g.name, bytes, x(g.from), y, bytes * scale, kBarHeight, g.fill, g.label, bytes);
      if (bytes * scale > 40) {
        absl::StrAppendFormat(svg, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">%s %d</text>\n", x(g.from) + 3,
                              y + 15, g.label, bytes);
      }
    }
  };
  const double ys = top + 22, yr = top + 22 + kBarHeight + 26;
  bar(sender, ys, absl::StrCat(sname, " sends"));
  bar(receiver, yr, absl::StrCat(rname, " receives"));
  // The marks both bars are read against.
  auto mark = [&](int64_t v, double y, const std::string& text, bool below) {
    absl::StrAppendFormat(svg, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", x(v), y,
                          x(v), y + kBarHeight);
    absl::StrAppendFormat(svg, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%s</text>\n", x(v) + 2,
                          below ? y + kBarHeight + 11 : y - 3, Escape(text));
  };
  mark(0, ys, absl::StrCat("snd_una ", s.snd_una()), false);
  mark(rel(s.snd_nxt()), ys, absl::StrCat("snd_nxt ", s.snd_nxt()), true);
  mark(rel(r.rcv_nxt()), yr, absl::StrCat("rcv_nxt ", r.rcv_nxt()), true);
}

}  // namespace

std::string SequenceSvg(const v1::CompareResult& result) {
  std::string body;
  double y = 40;
  for (const v1::PairSamples& ps : result.pairs()) {
    if (ps.samples().empty()) continue;
    const v1::ConnectionPair& p = ps.samples(ps.samples_size() - 1);
    const std::string a = absl::StrCat("A ", result.host_a()), b = absl::StrCat("B ", result.host_b());
    absl::StrAppendFormat(&body, "<text x=\"10\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">%s %s  ⇄  %s %s</text>\n",
                          y, Escape(a), Escape(FormatEndpoint(p.a(), p.a().local())), Escape(b),
                          Escape(FormatEndpoint(p.b(), p.b().local())));
    absl::StrAppendFormat(&body, "<text x=\"10\" y=\"%.1f\" font-size=\"11\">A %s, B %s; matched by %s%s</text>\n",
                          y + 16, StateShortName(p.a().state()), StateShortName(p.b().state()), p.matched_by(),
                          p.addresses_translated() ? " (addresses translated between them)" : "");
    y += 26;
    if (p.a().has_seq() && p.b().has_seq()) {
      Lane(p.a(), p.b(), a, b, y, &body);
      y += kLaneHeight;
      Lane(p.b(), p.a(), b, a, y, &body);
      y += kLaneHeight;
    } else {
      absl::StrAppendFormat(&body, "<text x=\"10\" y=\"%.1f\">no sequence numbers from %s</text>\n", y + 14,
                            p.a().has_seq() ? "B" : p.b().has_seq() ? "A" : "either host");
      y += 30;
    }
    std::vector<const v1::Finding*> findings;
    for (const auto& f : p.findings()) findings.push_back(&f);
    for (const auto& f : ps.findings()) findings.push_back(&f);
    if (findings.empty()) {
      absl::StrAppendFormat(&body, "<text x=\"10\" y=\"%.1f\" fill=\"#2a7\">no findings</text>\n", y);
      y += 18;
    }
    for (const v1::Finding* f : findings) {
      absl::StrAppendFormat(&body, "<text class=\"finding\" x=\"10\" y=\"%.1f\" fill=\"#b00\">%s: %s</text>\n", y,
                            Escape(f->code()), Escape(f->meaning()));
      y += 16;
    }
    y += 24;
  }
  return absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n<title>tcbscope compare: %s and %s</title>\n"
      "<text x=\"10\" y=\"20\" font-size=\"15\">tcbscope compare — A = %s, B = %s</text>\n%s</svg>\n",
      kWidth, y + 10, Escape(result.host_a()), Escape(result.host_b()), Escape(result.host_a()),
      Escape(result.host_b()), body);
}

}  // namespace tcbscope
