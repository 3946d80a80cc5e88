#include "common/filter.h"

#include <netdb.h>

#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/ip_address.h"
#include "common/status_macros.h"

namespace tcbscope {

// One node of the parsed expression. Leaves compare a port or match an
// address prefix (and optionally a port); inner nodes combine.
class FilterNode {
 public:
  enum class Kind { kAnd, kOr, kNot, kPort, kHost, kNetns };
  enum class Cmp { kEq, kNe, kLt, kLe, kGt, kGe };

  Kind kind = Kind::kAnd;
  std::unique_ptr<FilterNode> left, right;  // kAnd, kOr: both; kNot: left
  bool source = false;                      // sport/src vs dport/dst
  // kPort
  Cmp cmp = Cmp::kEq;
  uint32_t port = 0;
  // kHost
  bool any_address = true;
  IpAddress prefix;
  int prefix_len = 0;
  int host_port = -1;  // -1: any port
  // kNetns: a namespace's name (as in /run/netns) or inode
  std::string netns;
  uint64_t netns_inode = 0;  // when `netns` is a number
};

namespace {

struct Token {
  std::string text;
  int column;  // 1-based, in the original filter text
};

// What one evaluation knows about the connection, parsed at most once.
struct EvalContext {
  const v1::Connection& c;
  std::optional<IpAddress> local, remote;

  const IpAddress& Address(bool source) {
    std::optional<IpAddress>& slot = source ? local : remote;
    if (!slot) {
      absl::StatusOr<IpAddress> a = IpAddress::Parse(source ? c.local().address() : c.remote().address());
      slot = a.ok() ? *a : IpAddress();
    }
    return *slot;
  }
};

bool Eval(const FilterNode& n, EvalContext& ctx) {
  switch (n.kind) {
    case FilterNode::Kind::kAnd:
      return Eval(*n.left, ctx) && Eval(*n.right, ctx);
    case FilterNode::Kind::kOr:
      return Eval(*n.left, ctx) || Eval(*n.right, ctx);
    case FilterNode::Kind::kNot:
      return !Eval(*n.left, ctx);
    case FilterNode::Kind::kPort: {
      const uint32_t p = n.source ? ctx.c.local().port() : ctx.c.remote().port();
      switch (n.cmp) {
        case FilterNode::Cmp::kEq: return p == n.port;
        case FilterNode::Cmp::kNe: return p != n.port;
        case FilterNode::Cmp::kLt: return p < n.port;
        case FilterNode::Cmp::kLe: return p <= n.port;
        case FilterNode::Cmp::kGt: return p > n.port;
        case FilterNode::Cmp::kGe: return p >= n.port;
      }
      return false;
    }
    case FilterNode::Kind::kNetns:
      return n.netns_inode != 0 ? ctx.c.netns() == n.netns_inode : ctx.c.netns_name() == n.netns;
    case FilterNode::Kind::kHost: {
      if (n.host_port >= 0) {
        const uint32_t p = n.source ? ctx.c.local().port() : ctx.c.remote().port();
        if (p != static_cast<uint32_t>(n.host_port)) return false;
      }
      if (n.any_address) return true;
      return ctx.Address(n.source).InPrefix(n.prefix, n.prefix_len);
    }
  }
  return false;
}

std::string Render(const FilterNode& n) {
  static const char* kCmp[] = {"=", "!=", "<", "<=", ">", ">="};
  switch (n.kind) {
    case FilterNode::Kind::kAnd: return absl::StrCat("(", Render(*n.left), " and ", Render(*n.right), ")");
    case FilterNode::Kind::kOr: return absl::StrCat("(", Render(*n.left), " or ", Render(*n.right), ")");
    case FilterNode::Kind::kNot: return absl::StrCat("(not ", Render(*n.left), ")");
    case FilterNode::Kind::kPort:
      return absl::StrCat(n.source ? "sport " : "dport ", kCmp[static_cast<int>(n.cmp)], " :", n.port);
    case FilterNode::Kind::kNetns:
      return absl::StrCat("netns ", n.netns);
    case FilterNode::Kind::kHost: {
      std::string addr = n.any_address ? "*"
                         : n.prefix.is_v6() ? absl::StrCat("[", n.prefix.ToString(), "/", n.prefix_len, "]")
                                            : absl::StrCat(n.prefix.ToString(), "/", n.prefix_len);
      return absl::StrCat(n.source ? "src " : "dst ", addr, ":", n.host_port < 0 ? "*" : absl::StrCat(n.host_port));
    }
  }
  return "?";
}

bool IsOperatorChar(char c) { return c == '=' || c == '!' || c == '<' || c == '>'; }

// Splits the filter into words. Parentheses are always their own tokens; a
// leading '!' is split off a word ("!sport"); a keyword glued to its operator
// and value ("sport>=:1024") is split into three.
std::vector<Token> Lex(absl::string_view text) {
  std::vector<Token> out;
  size_t i = 0;
  auto push = [&](size_t start, size_t len) {
    out.push_back(Token{std::string(text.substr(start, len)), static_cast<int>(start) + 1});
  };
  while (i < text.size()) {
    const char ch = text[i];
    if (absl::ascii_isspace(static_cast<unsigned char>(ch))) {
      ++i;
      continue;
    }
    if (ch == '(' || ch == ')') {
      push(i, 1);
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && !absl::ascii_isspace(static_cast<unsigned char>(text[end])) && text[end] != '(' &&
           text[end] != ')') {
      ++end;
    }
    absl::string_view word = text.substr(i, end - i);
    size_t start = i;
    i = end;
    // "!word" (but not "!=") negates the word.
    while (word.size() > 1 && word[0] == '!' && word[1] != '=') {
      push(start, 1);
      word.remove_prefix(1);
      ++start;
    }
    bool split = false;
    for (absl::string_view kw : {"sport", "dport", "src", "dst"}) {
      if (word.size() > kw.size() && absl::StartsWithIgnoreCase(word, kw) && IsOperatorChar(word[kw.size()])) {
        push(start, kw.size());
        size_t op = kw.size();
        size_t op_end = op + 1;
        if (op_end < word.size() && word[op_end] == '=') ++op_end;
        push(start + op, op_end - op);
        if (op_end < word.size()) push(start + op_end, word.size() - op_end);
        split = true;
        break;
      }
    }
    if (!split) push(start, word.size());
  }
  return out;
}

class Parser {
 public:
  Parser(absl::string_view text, const FilterLimits& limits) : limits_(limits), tokens_(Lex(text)) {}

  absl::Status Run(std::unique_ptr<FilterNode>* root, bool* saw_states, StateMask* states) {
    while (!AtEnd() && IsStateWord(Peek().text)) {
      const bool exclude = !absl::EqualsIgnoreCase(Peek().text, "state");
      const std::string keyword = Peek().text;
      Advance();
      if (AtEnd()) return Expected(absl::StrCat("a state name after '", keyword, "'"));
      std::optional<StateMask> mask = ParseStateWord(Peek().text);
      if (!mask) {
        return Expected(
            "a state (established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, closed, close-wait, "
            "last-ack, listening, closing) or group (all, connected, synchronized, bucket, big)");
      }
      Advance();
      // As in ss: the first state word decides the starting set (none for
      // `state`, every state for `exclude`); later ones add or remove.
      if (!*saw_states) *states = exclude ? kAllStates : 0;
      *saw_states = true;
      if (exclude) {
        *states &= ~*mask;
      } else {
        *states |= *mask;
      }
    }
    if (AtEnd()) return absl::OkStatus();
    TCB_ASSIGN_OR_RETURN(*root, ParseExpr(0));
    if (!AtEnd()) {
      if (Peek().text == ")") return Error(Peek(), "')' without a matching '('");
      return Expected("'and', 'or' or a condition");
    }
    return absl::OkStatus();
  }

 private:
  static bool IsStateWord(const std::string& w) {
    return absl::EqualsIgnoreCase(w, "state") || absl::EqualsIgnoreCase(w, "exclude") ||
           absl::EqualsIgnoreCase(w, "excl");
  }
  static bool IsAnd(const std::string& w) {
    return w == "&&" || w == "&" || absl::EqualsIgnoreCase(w, "and");
  }
  static bool IsOr(const std::string& w) { return w == "||" || w == "|" || absl::EqualsIgnoreCase(w, "or"); }
  static bool IsNot(const std::string& w) { return w == "!" || absl::EqualsIgnoreCase(w, "not"); }

  bool AtEnd() const { return pos_ >= tokens_.size(); }
  const Token& Peek() const { return tokens_[pos_]; }
  void Advance() { ++pos_; }

  absl::Status Error(const Token& at, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("filter: column ", at.column, ": ", what));
  }
  // "expected X, got 'Y'" at the current token, or at the end.
  absl::Status Expected(absl::string_view what) const {
    if (AtEnd()) {
      const int col = tokens_.empty() ? 1
                                      : tokens_.back().column + static_cast<int>(tokens_.back().text.size());
      return absl::InvalidArgumentError(
          absl::StrCat("filter: column ", col, ": expected ", what, ", got end of filter"));
    }
    return Error(Peek(), absl::StrCat("expected ", what, ", got '", Peek().text, "'"));
  }

  static std::unique_ptr<FilterNode> Combine(FilterNode::Kind kind, std::unique_ptr<FilterNode> l,
                                             std::unique_ptr<FilterNode> r) {
    auto n = std::make_unique<FilterNode>();
    n->kind = kind;
    n->left = std::move(l);
    n->right = std::move(r);
    return n;
  }

  // ss gives and, or and juxtaposition one precedence, left to right:
  // `a or b c` is `(a or b) and c`.
  absl::StatusOr<std::unique_ptr<FilterNode>> ParseExpr(int depth) {
    TCB_ASSIGN_OR_RETURN(std::unique_ptr<FilterNode> left, ParseUnary(depth));
    while (!AtEnd() && Peek().text != ")") {
      FilterNode::Kind kind = FilterNode::Kind::kAnd;
      if (IsAnd(Peek().text) || IsOr(Peek().text)) {
        kind = IsOr(Peek().text) ? FilterNode::Kind::kOr : FilterNode::Kind::kAnd;
        const std::string op = Peek().text;
        Advance();
        if (AtEnd() || Peek().text == ")") return Expected(absl::StrCat("a condition after '", op, "'"));
      }
      TCB_ASSIGN_OR_RETURN(std::unique_ptr<FilterNode> right, ParseUnary(depth));
      left = Combine(kind, std::move(left), std::move(right));
    }
    return left;
  }

  absl::StatusOr<std::unique_ptr<FilterNode>> ParseUnary(int depth) {
    if (depth > limits_.max_depth) {
      return Error(AtEnd() ? tokens_.back() : Peek(),
                   absl::StrCat("nested deeper than ", limits_.max_depth, " levels"));
    }
    if (AtEnd()) return Expected("a condition");
    if (IsNot(Peek().text)) {
      Advance();
      TCB_ASSIGN_OR_RETURN(std::unique_ptr<FilterNode> child, ParseUnary(depth + 1));
      return Combine(FilterNode::Kind::kNot, std::move(child), nullptr);
    }
    if (Peek().text == "(") {
      Advance();
      TCB_ASSIGN_OR_RETURN(std::unique_ptr<FilterNode> inner, ParseExpr(depth + 1));
      if (AtEnd() || Peek().text != ")") return Expected("')'");
      Advance();
      return inner;
    }
    return ParseCondition();
  }

  absl::StatusOr<std::unique_ptr<FilterNode>> ParseCondition() {
    const Token& t = Peek();
    const std::string word = absl::AsciiStrToLower(t.text);
    if (++terms_ > limits_.max_terms) {
      return Error(t, absl::StrCat("more than ", limits_.max_terms, " conditions"));
    }
    if (word == "sport" || word == "dport") return ParsePortCondition(word == "sport");
    if (word == "src" || word == "dst") return ParseHostCondition(word == "src");
    if (word == "netns") return ParseNetnsCondition();
    if (IsStateWord(t.text)) {
      return Error(t, absl::StrCat("'", t.text, "' must come before the rest of the filter, as in ss"));
    }
    return Expected("a condition (sport, dport, src, dst, netns, not, '(')");
  }

  // tcbscope's addition to ss's language: `netns NAME|INODE` selects the
  // connections of one network namespace (agents run with --all-netns).
  absl::StatusOr<std::unique_ptr<FilterNode>> ParseNetnsCondition() {
    Advance();
    if (!AtEnd() && (Peek().text == "=" || Peek().text == "==")) Advance();
    if (AtEnd()) return Expected("a namespace name or inode after 'netns'");
    auto n = std::make_unique<FilterNode>();
    n->kind = FilterNode::Kind::kNetns;
    n->netns = Peek().text;
    if (n->netns == "(" || n->netns == ")") return Expected("a namespace name or inode after 'netns'");
    uint64_t inode = 0;
    if (absl::SimpleAtoi(n->netns, &inode)) n->netns_inode = inode;
    Advance();
    return n;
  }

  absl::StatusOr<std::unique_ptr<FilterNode>> ParsePortCondition(bool source) {
    const std::string keyword = Peek().text;
    Advance();
    auto n = std::make_unique<FilterNode>();
    n->kind = FilterNode::Kind::kPort;
    n->source = source;
    std::string op_text;
    if (!AtEnd()) {
      std::optional<FilterNode::Cmp> cmp = ParseCmp(Peek().text);
      if (cmp) {
        n->cmp = *cmp;
        op_text = Peek().text;
        Advance();
      }
    }
    const std::string after = op_text.empty() ? keyword : absl::StrCat(keyword, " ", op_text);
    if (AtEnd()) return Expected(absl::StrCat("a port after '", after, "'"));
    std::optional<uint32_t> port = ParsePort(Peek().text);
    if (!port) return Expected(absl::StrCat("a port (0-65535 or a service name) after '", after, "'"));
    n->port = *port;
    Advance();
    return n;
  }

  absl::StatusOr<std::unique_ptr<FilterNode>> ParseHostCondition(bool source) {
    const std::string keyword = Peek().text;
    Advance();
    bool negate = false;
    if (!AtEnd()) {
      const std::string& w = Peek().text;
      if (w == "=" || w == "==" || absl::EqualsIgnoreCase(w, "eq")) {
        Advance();
      } else if (w == "!=" || absl::EqualsIgnoreCase(w, "ne") || absl::EqualsIgnoreCase(w, "neq")) {
        negate = true;  // ss refuses this; it reads naturally, so we accept it
        Advance();
      }
    }
    if (AtEnd()) return Expected(absl::StrCat("an address after '", keyword, "'"));
    auto n = std::make_unique<FilterNode>();
    n->kind = FilterNode::Kind::kHost;
    n->source = source;
    if (!ParseHost(Peek().text, n.get())) {
      return Expected("an address: a.b.c.d[/len][:port], [v6addr][/len][:port], :port, * or localhost");
    }
    Advance();
    if (negate) return Combine(FilterNode::Kind::kNot, std::move(n), nullptr);
    return n;
  }

  static std::optional<FilterNode::Cmp> ParseCmp(const std::string& w) {
    const std::string l = absl::AsciiStrToLower(w);
    if (l == "=" || l == "==" || l == "eq") return FilterNode::Cmp::kEq;
    if (l == "!=" || l == "ne" || l == "neq") return FilterNode::Cmp::kNe;
    if (l == "<" || l == "lt") return FilterNode::Cmp::kLt;
    if (l == "<=" || l == "le") return FilterNode::Cmp::kLe;
    if (l == ">" || l == "gt") return FilterNode::Cmp::kGt;
    if (l == ">=" || l == "ge") return FilterNode::Cmp::kGe;
    return std::nullopt;
  }

  // ":22", "22", ":ssh", "ssh".
  static std::optional<uint32_t> ParsePort(absl::string_view text) {
    if (!text.empty() && text.front() == ':') text.remove_prefix(1);
    if (text.empty() || text.size() > 32) return std::nullopt;
    if (absl::ascii_isdigit(static_cast<unsigned char>(text.front()))) {
      uint32_t p = 0;
      if (!absl::SimpleAtoi(text, &p) || p > 65535) return std::nullopt;
      return p;
    }
    for (char c : text) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return std::nullopt;
    }
    // /etc/services only: no network lookup.
    servent entry;
    servent* result = nullptr;
    char buf[1024];
    const std::string name(text);
    if (getservbyname_r(name.c_str(), "tcp", &entry, buf, sizeof(buf), &result) != 0 || result == nullptr) {
      return std::nullopt;
    }
    return ntohs(static_cast<uint16_t>(result->s_port));
  }

  // ADDR[/LEN][:PORT], [V6][/LEN][:PORT], [V6/LEN][:PORT], :PORT, *:PORT, *,
  // a bare IPv6 address (no port), localhost (= 127.0.0.1, as ss resolves it).
  static bool ParseHost(absl::string_view text, FilterNode* n) {
    absl::string_view addr, port;
    if (text == "*") return true;
    if (!text.empty() && text.front() == '[') {
      const size_t close = text.find(']');
      if (close == absl::string_view::npos) return false;
      addr = text.substr(1, close - 1);
      absl::string_view rest = text.substr(close + 1);
      if (!rest.empty() && rest.front() == '/') {  // [v6]/len[:port]
        const size_t colon = rest.find(':');
        const std::string joined = absl::StrCat(addr, rest.substr(0, colon));
        if (!ParseAddress(joined, n)) return false;
        rest = colon == absl::string_view::npos ? absl::string_view() : rest.substr(colon);
        addr = absl::string_view();
        if (rest.empty()) return true;
      }
      if (!rest.empty()) {
        if (rest.front() != ':') return false;
        port = rest.substr(1);
        if (port.empty()) return false;
      }
      if (!addr.empty() && !ParseAddress(addr, n)) return false;
      return port.empty() || ParseHostPort(port, n);
    }
    const size_t colons = std::count(text.begin(), text.end(), ':');
    if (colons >= 2) return ParseAddress(text, n);  // bare IPv6
    if (colons == 1) {
      const size_t c = text.find(':');
      addr = text.substr(0, c);
      port = text.substr(c + 1);
      if (port.empty()) return false;
      if (!addr.empty() && addr != "*" && !ParseAddress(addr, n)) return false;
      return ParseHostPort(port, n);
    }
    return ParseAddress(text, n);
  }

  static bool ParseHostPort(absl::string_view port, FilterNode* n) {
    if (port == "*") return true;
    std::optional<uint32_t> p = ParsePort(port);
    if (!p) return false;
    n->host_port = static_cast<int>(*p);
    return true;
  }

  static bool ParseAddress(absl::string_view text, FilterNode* n) {
    absl::string_view a = text;
    int len = -1;
    const size_t slash = text.find('/');
    if (slash != absl::string_view::npos) {
      a = text.substr(0, slash);
      if (!absl::SimpleAtoi(text.substr(slash + 1), &len) || len < 0) return false;
    }
    IpAddress ip;
    if (absl::EqualsIgnoreCase(a, "localhost")) {
      ip = IpAddress::V4(0x7f000001);
    } else {
      absl::StatusOr<IpAddress> parsed = IpAddress::Parse(a);
      if (!parsed.ok()) return false;
      ip = *parsed;
    }
    if (len < 0) len = ip.bit_length();
    if (len > ip.bit_length()) return false;
    n->any_address = false;
    n->prefix = ip;
    n->prefix_len = len;
    return true;
  }

  const FilterLimits& limits_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int terms_ = 0;
};

}  // namespace

Filter::Filter() = default;
Filter::~Filter() = default;
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;

absl::StatusOr<Filter> Filter::Parse(absl::string_view text, const FilterLimits& limits) {
  if (text.size() > limits.max_length) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter: column ", limits.max_length + 1, ": longer than ", limits.max_length, " bytes"));
  }
  Filter f;
  Parser parser(text, limits);
  TCB_RETURN_IF_ERROR(parser.Run(&f.root_, &f.saw_states_, &f.state_set_));
  return f;
}

StateMask Filter::States(StateMask defaults) const { return saw_states_ ? state_set_ : defaults; }

bool Filter::Matches(const v1::Connection& c) const {
  if (!root_) return true;
  EvalContext ctx{c, std::nullopt, std::nullopt};
  return Eval(*root_, ctx);
}

bool Filter::MatchesEverything() const { return root_ == nullptr; }

std::string Filter::DebugString() const {
  std::string s;
  if (saw_states_) absl::StrAppend(&s, "states=0x", absl::Hex(state_set_), " ");
  absl::StrAppend(&s, root_ ? Render(*root_) : "*");
  return s;
}

}  // namespace tcbscope
