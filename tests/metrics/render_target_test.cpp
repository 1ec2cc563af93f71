// The render-target parser, printer and bind() against graphite-web 1.1.8.
// The expected trees in GraphiteAgrees were produced by graphite-web's own
// grammar (webapp/graphite/render/grammar_unsafe.py, Debian's graphite-web
// 1.1.8-2 with pyparsing 3.0.9, parseString(target, parseAll=True)) and
// walked the way render/evaluator.py evaluateTokens walks them (pipes become
// the first argument); parameter rules follow render/functions.py `.params`
// and functions/params.py.
#include "metrics/render_target.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "metrics/render_functions.h"

namespace stele::metrics {
namespace {

// A compact tree: P<glob as graphite's finder gets it>, S<string value>,
// Ni<int>, Nf<float>, Btrue/Bfalse, Z (None), C<name>(args), key=value.
std::string dump(const Expr& e, uint32_t i) {
  const Node& n = e.node(i);
  std::string k = e.is_keyword(n) ? std::string(e.key_of(n)) + "=" : "";
  char buf[64];
  switch (n.kind) {
    case NodeKind::kPath: return k + "P" + path_pattern(e.text_of(n));
    case NodeKind::kString: return k + "S" + std::string(e.text_of(n));
    case NodeKind::kBool: return k + (n.boolean ? "Btrue" : "Bfalse");
    case NodeKind::kNone: return k + "Z";
    case NodeKind::kNumber:
      if (n.integer && std::fabs(n.number) < 9007199254740992.0) {
        std::snprintf(buf, sizeof buf, "Ni%lld", static_cast<long long>(n.number));
      } else if (std::isinf(n.number)) {
        std::snprintf(buf, sizeof buf, "Nf%s", n.number > 0 ? "inf" : "-inf");
      } else {
        std::snprintf(buf, sizeof buf, "Nf%.17g", n.number);
      }
      return k + buf;
    case NodeKind::kCall: {
      std::string s = k + "C" + std::string(e.text_of(n)) + "(";
      bool first = true;
      for (uint32_t a : e.args(n)) {
        s += first ? "" : ",";
        first = false;
        s += dump(e, a);
      }
      return s + ")";
    }
  }
  return "?";
}

std::string tree(std::string_view target) {
  auto r = parse_target(target);
  if (!r) return "ERR " + r.error().message;
  return dump(*r, r->root);
}

std::string parse_error(std::string_view target) {
  auto r = parse_target(target);
  if (r) return "parsed as " + dump(*r, r->root);
  EXPECT_EQ(r.error().code, 400);
  return r.error().message;
}

std::string canonical(std::string_view target) {
  auto r = parse_target(target);
  if (!r) return "ERR " + r.error().message;
  return to_string(*r);
}

TEST(RenderTarget, GraphiteAgrees) {
  struct Case {
    std::string_view target, graphite;
  };
  const Case cases[] = {
      // Grafana wraps every target in aliasSub; the replacement keeps its backslash.
      {R"(aliasSub(stele.app.web.requests.count, '(^.*$)', '\1'))",
       R"(CaliasSub(Pstele.app.web.requests.count,S(^.*$),S\1))"},
      {"aliasByNode(stele.task.*.web-*.*.memory.rss, 2, 3)", "CaliasByNode(Pstele.task.*.web-*.*.memory.rss,Ni2,Ni3)"},
      {"sumSeries(stele.task.*.web-*.*.memory.rss)", "CsumSeries(Pstele.task.*.web-*.*.memory.rss)"},
      {R"(alias(sumSeries(stele.task.{host1,host2}.web-r[0-9]*.?.cpu.*), "cpu total"))",
       "Calias(CsumSeries(Pstele.task.{host1,host2}.web-r[0-9]*.?.cpu.*),Scpu total)"},
      // Any printable ASCII but (){},.'"\| is a path character.
      {"a:b#c=d$e@f!g%h&i+j;k<l>m/n^o`p~q-r_s*t?u[v]w", "Pa:b#c=d$e@f!g%h&i+j;k<l>m/n^o`p~q-r_s*t?u[v]w"},
      {R"(a\(b\).c\,d\{e\}\=f)", "Pa(b).c,d{e}=f"},  // escapes drop their backslash
      {"a{b,c}d.{x,y}", "Pa{b,c}d.{x,y}"},
      {"f(1, -2, 3.5, -0.25, 1e5, 2E-3, -1.5e10, 007)",
       "Cf(Ni1,Ni-2,Nf3.5,Nf-0.25,Nf100000,Nf0.002,Nf-15000000000,Ni7)"},
      {"f(123456789012345678901234567890, 1e999, -1e999)", "Cf(Nf1.2345678901234568e+29,Nfinf,Nf-inf)"},
      {"f(true, False, NONE, inf, TRUE, None, Inf)", "Cf(Btrue,Bfalse,Z,Nfinf,Btrue,Z,Nfinf)"},
      {"f(truex, none_x, inf$, true$)", "Cf(Ptruex,Pnone_x,Pinf$,Ptrue$)"},  // not keywords
      // A number needs ',' or ')' after it; otherwise it is a path.
      {"f(1-2, 1.5.6, 1e5x)", "Cf(P1-2,P1.5.6,P1e5x)"},
      {"f(1e+5, -5|g())", "Cf(P1e+5,Cg(P-5))"},
      // Strings keep what is between the quotes (graphite does not unescape);
      // a tab becomes spaces up to the next multiple of 8 columns.
      {R"(f('single', "double", 'it''s', "say ""hi""", '\1', "a\"b", '\x4a'))",
       R"(Cf(Ssingle,Sdouble,Sit''s,Ssay ""hi"",S\1,Sa\"b,S\x4a))"},
      {"f('a\tb')", "Cf(Sa    b)"},
      {"f(x, a=1, b='s', c=g(y), d=true, e=None)", "Cf(Px,a=Ni1,b=Ss,c=Cg(Py),d=Btrue,e=Z)"},
      {"f(x , a = 1 ,b= z.y)", "Cf(Px,a=Ni1,b=Pz.y)"},
      {"f(x, a=)", "Cf(Px,Pa=)"},  // not a keyword argument: the path "a="
      {"f(x, a==1)", "Cf(Px,a=P=1)"},
      {"f(x, 1=2)", "Cf(Px,P1=2)"},
      {R"(f(a\=b))", "Cf(Pa=b)"},
      // Pipes: the left side becomes the call's first argument.
      {R"(a.b|scale(2)|alias("x"))", "Calias(Cscale(Pa.b,Ni2),Sx)"},
      {"a.b | scale(2) |\talias('x')", "Calias(Cscale(Pa.b,Ni2),Sx)"},
      {"f(g(x)|h(), 1)", "Cf(Ch(Cg(Px)),Ni1)"},
      {"f(x, k=y|g())", "Cf(Px,k=Cg(Py))"},
      {"1|g()", "Cg(P1)"},
      {"true|g()", "Cg(Ptrue)"},
      {" \tf( x , y ) \n", "Cf(Px,Py)"},
      {"sumSeries (a.b)", "CsumSeries(Pa.b)"},
      {"f()", "Cf()"},
      {"keepLastValue(a.b, INF)", "CkeepLastValue(Pa.b,Nfinf)"},
      // Not supported by bind(), but parsed like graphite parses them.
      {R"(seriesByTag('name=cpu', "host=~web.*"))", R"(CseriesByTag(Sname=cpu,Shost=~web.*))"},
  };
  for (const Case& c : cases) EXPECT_EQ(tree(c.target), c.graphite) << c.target;
}

TEST(RenderTarget, GraphiteRefuses) {
  // Each of these fails graphite's grammar with parseAll (without it,
  // graphite-web drops what it cannot parse: Stele refuses instead).
  for (std::string_view t :
       {"f(a=1)",     "f(x, a=1, 2)", "f(true.x)", "f(true-x)", "a..b",    "a.b.",      ".a",
        "a{b,}",      "a{}.b",        "a{b.c}",    "a{b{c}}",   "f('abc",  "f('abc'')", R"(f("a\xzz"))",
        R"(f(a\ b))", R"(f(a\xb))",   "a .b",      "a. b",      "f(x)(y)", "()",        "f(,)",
        "f(x,)",      "a.b|",         "a.b|c.d",   "f('a\nb')", "f(1 x)",  "f(1\n x)",  "scale(a.b, 2))",
        "f(\xc3\xa9)"})
    EXPECT_EQ(tree(t).substr(0, 3), "ERR") << t;
}

TEST(RenderTarget, ErrorsNameThePositionAndWhatWasExpected) {
  EXPECT_EQ(parse_error("sumSeries(a.b c.d)"), "position 15: expected ')' or ',', found 'c'");
  EXPECT_EQ(parse_error("sumSeries(a.b,"), "position 15: expected an argument, found end of target");
  EXPECT_EQ(parse_error("sumSeries(a.b,)"), "position 15: expected an argument, found ')'");
  EXPECT_EQ(parse_error("f(a=1)"), "position 3: expected a positional argument before keyword arguments, found 'a'");
  EXPECT_EQ(parse_error("f(x, a=1, 2)"), "position 11: expected a keyword argument (name=value), found '2'");
  EXPECT_EQ(parse_error("f(true.x)"), "position 7: expected ')' or ',', found '.'");
  EXPECT_EQ(parse_error("a..b"), "position 3: expected a path node after '.', found '.'");
  EXPECT_EQ(parse_error(".a"), "position 1: expected a metric path or function call, found '.'");
  EXPECT_EQ(parse_error("a{b,}"), "position 5: expected a name inside '{}', found '}'");
  EXPECT_EQ(parse_error("a{b.c}"), "position 4: expected ',' or '}', found '.'");
  EXPECT_EQ(parse_error("f('abc"), "position 7: expected a closing quote, found end of target");
  EXPECT_EQ(parse_error(R"(f(a\ b))"), R"(position 5: expected one of (){},.'"\|= after '\', found ' ')");
  EXPECT_EQ(parse_error("f(x)(y)"), "position 5: expected end of target, found '('");
  EXPECT_EQ(parse_error("a.b|c.d"), "position 6: expected '(', found '.'");
  EXPECT_EQ(parse_error("f(\xc3\xa9)"), "position 3: expected an argument, found byte 0xC3");
  EXPECT_EQ(parse_error("scale(a.b, 2))"), "position 14: expected end of target, found ')'");
  EXPECT_EQ(parse_error("aliasSub(a.b, '(^.*$)', '\\1'"), "position 29: expected ')' or ',', found end of target");
  EXPECT_EQ(parse_error(""), "empty target");
  EXPECT_EQ(parse_error(" \t\n"), "empty target");
}

TEST(RenderTarget, NestingIsBounded) {
  std::string deep;
  for (int i = 0; i < kMaxTargetDepth; ++i) deep += "f(";
  deep += "x";
  deep += std::string(kMaxTargetDepth, ')');
  EXPECT_TRUE(parse_target(deep));
  EXPECT_EQ(parse_error("f(" + deep + ")"), "position 202: calls nested deeper than 100");

  std::string piped = "x";
  for (int i = 0; i <= kMaxTargetDepth; ++i) piped += "|f()";
  EXPECT_EQ(parse_error(piped), "position 403: calls nested deeper than 100");
  EXPECT_EQ(parse_error(std::string(kMaxTargetBytes + 1, 'a')), "target longer than 1048576 bytes");
}

TEST(RenderTarget, AstRecordsPositionsKeywordsAndRawText) {
  auto r = parse_target("alias(scale(a\\.b, 2), name='x')");
  ASSERT_TRUE(r);
  const Expr& e = *r;
  const Node& alias = e.node(e.root);
  EXPECT_EQ(alias.kind, NodeKind::kCall);
  EXPECT_EQ(alias.pos, 1u);
  ASSERT_EQ(e.args(alias).size(), 2u);
  const Node& scale = e.node(e.args(alias)[0]);
  EXPECT_EQ(e.text_of(scale), "scale");
  EXPECT_EQ(scale.pos, 7u);
  const Node& path = e.node(e.args(scale)[0]);
  EXPECT_EQ(e.text_of(path), "a\\.b");
  EXPECT_EQ(path_pattern(e.text_of(path)), "a.b");
  EXPECT_EQ(path.pos, 13u);
  const Node& two = e.node(e.args(scale)[1]);
  EXPECT_TRUE(two.integer);
  EXPECT_EQ(two.number, 2);
  const Node& name = e.node(e.args(alias)[1]);
  EXPECT_EQ(e.key_of(name), "name");
  EXPECT_EQ(name.key_pos, 23u);
  EXPECT_EQ(name.pos, 28u);
  EXPECT_EQ(name.quote, '\'');
  EXPECT_EQ(e.text_of(name), "x");
}

TEST(RenderTarget, CanonicalText) {
  EXPECT_EQ(canonical(" aliasSub( a.b , '(^.*$)' , \"\\1\" ) "), R"(aliasSub(a.b,'(^.*$)',"\1"))");
  EXPECT_EQ(canonical("a.b|scale(2)|alias('x')"), "alias(scale(a.b,2),'x')");
  EXPECT_EQ(canonical("f(007, -0, -0.0, 2.50, 1E5, 1e-7, 1e23, 1e999, -1e999, INF, NONE, False)"),
            "f(7,0,-0.0,2.5,100000.0,1e-07,1e23,inf,-1e999,inf,None,false)");
  EXPECT_EQ(canonical("f(123456789012345678901234567890)"), "f(123456789012345677877719597056)");
  EXPECT_EQ(canonical("f(x, k = v)"), "f(x,k=v)");
  // Only a pipe can give these first arguments; they keep it.
  EXPECT_EQ(canonical("1|g()"), "1|g()");
  EXPECT_EQ(canonical("true|g(1)"), "true|g(1)");
  EXPECT_EQ(canonical("f(x, 1|g()|h())"), "f(x,h(1|g()))");
  EXPECT_EQ(canonical("x|true()|f(1)"), "f(x|true(),1)");
  EXPECT_EQ(canonical("true(None)|f(1)"), "true(None)|f(1)");
  // A path "a=b" (from a pipe) would read as a keyword argument: '=' escaped.
  EXPECT_EQ(canonical("a=b|g()"), "g(a\\=b)");
  EXPECT_EQ(canonical("f(x, a=)"), "f(x,a\\=)");
}

TEST(RenderTarget, CanonicalTextParsesToAnEquivalentTree) {
  for (std::string_view t :
       {"aliasSub(stele.app.web.requests.count, '(^.*$)', '\\1')", "a.b|scale(2)|alias(\"x\")",
        "f(1|g()|h(), x, k=2|inf(), j=y|true()|none(3))", "true=x|g()|h(y, a=b|c(), k=1)", "a=b|g()", "f(x, a=.b)",
        "summarize(a.{b,c}.d, '1h', 'max', true)", "f(-0.0, 1e-300, 2.5e-310, 1e308, 99999999999999999999)", "x|inf()",
        "None|TRUE('s')|f(x)", "f('a\tb', \"\\x4aZ\")"}) {
    auto a = parse_target(t);
    ASSERT_TRUE(a) << t << ": " << a.error().message;
    const std::string text = to_string(*a);
    auto b = parse_target(text);
    ASSERT_TRUE(b) << t << " -> " << text << ": " << b.error().message;
    EXPECT_TRUE(equivalent(*a, *b)) << t << " -> " << text;
    EXPECT_EQ(to_string(*b), text);
  }
}

TEST(RenderTarget, EquivalenceIgnoresPositionsAndHarmlessEscapes) {
  auto a = parse_target("f( x , a\\=b )"), b = parse_target("f(x,a\\=b)"), c = parse_target("f(x,a\\=c)");
  ASSERT_TRUE(a && b && c);
  EXPECT_TRUE(equivalent(*a, *b));
  EXPECT_FALSE(equivalent(*a, *c));
  auto d = parse_target("f('x')"), q = parse_target("f(\"x\")");
  EXPECT_FALSE(equivalent(*d, *q));  // the quote is kept
  auto i = parse_target("f(1)"), f = parse_target("f(1.0)");
  EXPECT_FALSE(equivalent(*i, *f));  // graphite passes int 1 and float 1.0
}

// --- the function table and bind() ---

std::string bind_error(std::string_view target) {
  auto e = parse_target(target);
  if (!e) return "parse: " + e.error().message;
  auto b = bind(*e);
  if (b) return "bound";
  EXPECT_EQ(b.error().code, 400);
  return b.error().message;
}

Binding bound(const Expr& e) {
  auto b = bind(e);
  EXPECT_TRUE(b) << to_string(e) << ": " << (b ? "" : b.error().message);
  return b ? std::move(*b) : Binding{};
}

TEST(RenderFunctions, TableIsSortedAndHasTheIssuesFunctions) {
  auto fns = render_functions();
  for (size_t i = 1; i < fns.size(); ++i) EXPECT_LT(fns[i - 1].name, fns[i].name);
  for (std::string_view name : {"aliasSub",
                                "alias",
                                "aliasByNode",
                                "sumSeries",
                                "averageSeries",
                                "maxSeries",
                                "minSeries",
                                "scale",
                                "offset",
                                "derivative",
                                "nonNegativeDerivative",
                                "perSecond",
                                "movingAverage",
                                "summarize",
                                "groupByNode",
                                "highestCurrent",
                                "highestAverage",
                                "asPercent",
                                "divideSeries",
                                "keepLastValue",
                                "transformNull",
                                "removeBelowValue",
                                "timeShift",
                                "constantLine"}) {
    const FunctionSpec* f = find_render_function(name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_EQ(f->name, name);
    ASSERT_FALSE(f->params.empty());
    for (size_t p = 0; p + 1 < f->params.size(); ++p) EXPECT_FALSE(f->params[p].multiple) << name;
  }
  EXPECT_EQ(fns.size(), 24u);
  EXPECT_EQ(find_render_function("SumSeries"), nullptr);  // case-sensitive, as graphite
  EXPECT_EQ(find_render_function("zzz"), nullptr);
  EXPECT_EQ(param_type_name(find_render_function("summarize")->params[1].type), "interval");
  EXPECT_EQ(find_render_function("summarize")->params[2].fallback.text, "sum");
}

TEST(RenderFunctions, EveryFunctionAcceptsWhatGraphiteDocuments) {
  for (std::string_view t : {
           "aliasSub(a.b, '(^.*$)', '\\1')",
           "alias(a.b, 'x')",
           "aliasByNode(a.b.c, 1)",
           "aliasByNode(a.b.c, 0, -1, 'name')",
           "sumSeries(a.b)",
           "sumSeries(a.b, c.d, e.*)",
           "averageSeries(a.*)",
           "maxSeries(a.*, b.*)",
           "minSeries(a.*)",
           "scale(a.b, 2)",
           "scale(a.b, -0.5)",
           "offset(a.b, 10)",
           "derivative(a.b)",
           "nonNegativeDerivative(a.b)",
           "nonNegativeDerivative(a.b, 100)",
           "nonNegativeDerivative(a.b, maxValue=100, minValue=0)",
           "perSecond(a.b)",
           "perSecond(a.b, 4294967295)",
           "movingAverage(a.b, 10)",
           "movingAverage(a.b, '5min')",
           "movingAverage(a.b, '5min', 0.5)",
           "summarize(a.b, '1h')",
           "summarize(a.b, '1h', 'max', true)",
           "summarize(a.b, '1d', func='avg', alignToFrom=1)",
           "groupByNode(a.*.c, 1)",
           "groupByNode(a.*.c, 1, 'sum')",
           "groupByNode(a.*.c, 1, 'sumSeries')",
           "highestCurrent(a.*, 5)",
           "highestAverage(a.*, 5)",
           "asPercent(a.*)",
           "asPercent(a.*, 100)",
           "asPercent(a.*, b.total)",
           "asPercent(a.*, None, 0, 1)",
           "divideSeries(a.b, c.d)",
           "keepLastValue(a.b)",
           "keepLastValue(a.b, 3)",
           "keepLastValue(a.b, inf)",
           "transformNull(a.b)",
           "transformNull(a.b, -1)",
           "transformNull(a.b, 0, c.d)",
           "removeBelowValue(a.b, 0.5)",
           "timeShift(a.b, '7d')",
           "timeShift(a.b, '-1h', false, true)",
           "timeShift(a.b, '+1h', resetEnd=false, alignDst=true)",
           "constantLine(42)",
           "aliasSub(sumSeries(scale(a.*, 2), offset(b.*, 1)), 'x', 'y')",
           "a.*|scale(0.5)|alias('half')",
       })
    EXPECT_EQ(bind_error(t), "bound") << t;
}

TEST(RenderFunctions, BadCallsNameTheFunctionArgumentAndPosition) {
  EXPECT_EQ(bind_error("foo(a.b)"), "unknown function 'foo' at position 1");
  EXPECT_EQ(bind_error("alias(foo(a.b), 'x')"), "unknown function 'foo' at position 7");
  EXPECT_EQ(bind_error("seriesByTag('name=x')"), "unknown function 'seriesByTag' at position 1 (not supported)");
  EXPECT_EQ(bind_error("template(a.b)"), "unknown function 'template' at position 1 (not supported)");
  // The outer name is checked before its arguments (as graphite evaluates).
  EXPECT_EQ(bind_error("foo(bar(x))"), "unknown function 'foo' at position 1");

  EXPECT_EQ(bind_error("sumSeries(a.b, 1)"), "sumSeries: argument 2 (position 16) must be a series list");
  EXPECT_EQ(bind_error("sumSeries()"), "sumSeries: missing required argument 'seriesLists' (call at position 1)");
  EXPECT_EQ(bind_error("sumSeries(None)"), "sumSeries: argument 1 (position 11) must be a series list");
  EXPECT_EQ(bind_error("alias(a.b)"), "alias: missing required argument 'newName' (call at position 1)");
  EXPECT_EQ(bind_error("alias(a.b, 5)"), "alias: argument 2 (position 12) must be a string");
  EXPECT_EQ(bind_error("alias('a.b', 'x')"), "alias: argument 1 (position 7) must be a series list");
  EXPECT_EQ(bind_error("aliasSub(a.b, 'x')"), "aliasSub: missing required argument 'replace' (call at position 1)");
  EXPECT_EQ(bind_error("aliasByNode(a.b)"), "aliasByNode: missing required argument 'nodes' (call at position 1)");
  EXPECT_EQ(bind_error("aliasByNode(a.b, 1.5)"),
            "aliasByNode: argument 2 (position 18) must be a node number or a tag name");
  EXPECT_EQ(bind_error("aliasByNode(a.b, 1, true)"),
            "aliasByNode: argument 3 (position 21) must be a node number or a tag name");
  EXPECT_EQ(bind_error("aliasByNode(a.b, nodes=1)"), "aliasByNode: 'nodes' cannot be given by keyword (position 18)");
  EXPECT_EQ(bind_error("scale(a.b)"), "scale: missing required argument 'factor' (call at position 1)");
  EXPECT_EQ(bind_error("scale(a.b, x.y)"), "scale: argument 2 (position 12) must be a number");
  EXPECT_EQ(bind_error("scale(a.b, 'two')"), "scale: argument 2 (position 12) must be a number");
  EXPECT_EQ(bind_error("scale(a.b, None)"), "scale: argument 2 (position 12) must be a number");
  EXPECT_EQ(bind_error("scale(a.b, 2, 3)"), "scale: too many arguments: takes at most 2, argument 3 at position 15");
  EXPECT_EQ(bind_error("scale(a.b, factor=2, factor=3)"),
            "scale: keyword argument 'factor' repeats an argument already given (position 22)");
  EXPECT_EQ(bind_error("scale(a.b, 2, factor=3)"),
            "scale: keyword argument 'factor' repeats an argument already given (position 15)");
  EXPECT_EQ(bind_error("scale(a.b, size=3)"), "scale: unexpected keyword argument 'size' (position 12)");
  EXPECT_EQ(bind_error("offset(a.b)"), "offset: missing required argument 'factor' (call at position 1)");
  EXPECT_EQ(bind_error("derivative(a.b, 1)"),
            "derivative: too many arguments: takes at most 1, argument 2 at position 17");
  EXPECT_EQ(bind_error("derivative(1)"), "derivative: argument 1 (position 12) must be a series list");
  EXPECT_EQ(bind_error("nonNegativeDerivative(a.b, 'x')"),
            "nonNegativeDerivative: argument 2 (position 28) must be a number");
  EXPECT_EQ(bind_error("perSecond(a.b, minValue=true, maxValue=[])"),
            "perSecond: argument 'maxValue' (position 40) must be a number");
  EXPECT_EQ(bind_error("movingAverage(a.b)"),
            "movingAverage: missing required argument 'windowSize' (call at position 1)");
  EXPECT_EQ(bind_error("movingAverage(a.b, '5x')"),
            "movingAverage: argument 2 (position 20) is not a valid interval: invalid offset unit 'x'");
  EXPECT_EQ(bind_error("movingAverage(a.b, true)"),
            "movingAverage: argument 2 (position 20) must be a number of points or an interval string such as '5min'");
  EXPECT_EQ(bind_error("summarize(a.b, 3600)"),
            "summarize: argument 2 (position 16) must be an interval string such as '1h'");
  EXPECT_EQ(bind_error("summarize(a.b, '1H')"),
            "summarize: argument 2 (position 16) is not a valid interval: invalid offset unit 'H'");
  EXPECT_EQ(bind_error("summarize(a.b, '1h', 'sumSeries')"),
            "summarize: argument 3 (position 22) must be an aggregation function name (average, avg_zero, median, sum, "
            "min, max, diff, stddev, count, range, multiply, last, rangeOf, avg, total, current)");
  EXPECT_EQ(bind_error("summarize(a.b, '1h', alignToFrom='yes')"),
            "summarize: argument 'alignToFrom' (position 34) must be a boolean");
  EXPECT_EQ(bind_error("summarize(a.b, '1h', 'sum', 2)"), "summarize: argument 4 (position 29) must be a boolean");
  EXPECT_EQ(bind_error("groupByNode(a.b, 1, 'nope')"),
            "groupByNode: argument 3 (position 21) must be an aggregation function name (average, avg_zero, median, "
            "sum, min, max, diff, stddev, count, range, multiply, last, rangeOf, avg, total, current, asPercent, "
            "averageSeries, maxSeries, minSeries, sumSeries)");
  EXPECT_EQ(bind_error("groupByNode(a.b, 'sum')"), "bound");  // a tag name, as graphite allows
  EXPECT_EQ(bind_error("groupByNode(a.b)"), "groupByNode: missing required argument 'nodeNum' (call at position 1)");
  EXPECT_EQ(bind_error("highestCurrent(a.*, 2.0)"), "highestCurrent: argument 2 (position 21) must be an integer");
  EXPECT_EQ(bind_error("highestAverage(a.*, '2x')"), "highestAverage: argument 2 (position 21) must be an integer");
  EXPECT_EQ(bind_error("highestAverage(a.*)"), "highestAverage: missing required argument 'n' (call at position 1)");
  EXPECT_EQ(bind_error("asPercent(a.*, 'x')"),
            "asPercent: argument 2 (position 16) must be a number, a series list or None");
  EXPECT_EQ(bind_error("asPercent(a.*, None, 1.5)"),
            "asPercent: argument 3 (position 22) must be a node number or a tag name");
  EXPECT_EQ(bind_error("divideSeries(a.b)"),
            "divideSeries: missing required argument 'divisorSeries' (call at position 1)");
  EXPECT_EQ(bind_error("divideSeries(a.b, 2)"), "divideSeries: argument 2 (position 19) must be a series list");
  EXPECT_EQ(bind_error("keepLastValue(a.b, 2.5)"), "keepLastValue: argument 2 (position 20) must be an integer or inf");
  EXPECT_EQ(bind_error("transformNull(a.b, 0, 5)"), "transformNull: argument 3 (position 23) must be a series list");
  EXPECT_EQ(bind_error("removeBelowValue(a.b)"),
            "removeBelowValue: missing required argument 'n' (call at position 1)");
  EXPECT_EQ(bind_error("timeShift(a.b)"), "timeShift: missing required argument 'timeShift' (call at position 1)");
  EXPECT_EQ(bind_error("timeShift(a.b, 7)"),
            "timeShift: argument 2 (position 16) must be an interval string such as '1h'");
  EXPECT_EQ(bind_error("timeShift(a.b, '1d', alignDST=true)"),
            "timeShift: unexpected keyword argument 'alignDST' (position 22)");
  EXPECT_EQ(bind_error("constantLine()"), "constantLine: missing required argument 'value' (call at position 1)");
  EXPECT_EQ(bind_error("constantLine(a.b)"), "constantLine: argument 1 (position 14) must be a number");
  // Inner calls are checked too.
  EXPECT_EQ(bind_error("alias(scale(a.b), 'x')"), "scale: missing required argument 'factor' (call at position 7)");
}

TEST(RenderFunctions, BindCoercesLikeGraphitesValidators) {
  auto e = parse_target("summarize(scale(a.b, '1.5'), \"1h\", alignToFrom=1)");
  ASSERT_TRUE(e);
  Binding b = bound(*e);
  auto args = b.args_of(e->root);
  ASSERT_EQ(args.size(), 4u);  // one per parameter
  EXPECT_EQ(args[0].kind, ValueKind::kSeries);
  EXPECT_EQ(args[0].node, e->args(e->node(e->root))[0]);
  EXPECT_EQ(args[1].kind, ValueKind::kString);
  EXPECT_EQ(args[1].text, "1h");
  EXPECT_EQ(args[1].number, 3600);
  EXPECT_TRUE(args[2].is_default);
  EXPECT_EQ(args[2].kind, ValueKind::kString);
  EXPECT_EQ(args[2].text, "sum");
  EXPECT_EQ(args[2].node, kNoNode);
  EXPECT_FALSE(args[3].is_default);
  EXPECT_EQ(args[3].kind, ValueKind::kBool);
  EXPECT_TRUE(args[3].boolean);

  const uint32_t scale = e->args(e->node(e->root))[0];
  ASSERT_EQ(b.calls[scale].fn, find_render_function("scale"));
  auto sargs = b.args_of(scale);
  ASSERT_EQ(sargs.size(), 2u);
  EXPECT_EQ(sargs[1].kind, ValueKind::kNumber);
  EXPECT_EQ(sargs[1].number, 1.5);  // float("1.5")

  e = parse_target("highestCurrent(a.*, ' 3 ')");
  ASSERT_TRUE(e);
  b = bound(*e);
  EXPECT_EQ(b.args_of(e->root)[1].number, 3);  // int(" 3 ")

  e = parse_target("keepLastValue(a.b, 'inf')");
  ASSERT_TRUE(e);
  b = bound(*e);
  EXPECT_EQ(b.args_of(e->root)[1].number, INFINITY);

  e = parse_target("keepLastValue(a.b)");
  ASSERT_TRUE(e);
  b = bound(*e);
  EXPECT_TRUE(b.args_of(e->root)[1].is_default);
  EXPECT_EQ(b.args_of(e->root)[1].number, INFINITY);

  e = parse_target("timeShift(a.b, '-1d', 0, 'TRUE')");
  ASSERT_TRUE(e);
  b = bound(*e);
  EXPECT_EQ(b.args_of(e->root)[1].number, -86400);
  EXPECT_FALSE(b.args_of(e->root)[2].boolean);
  EXPECT_TRUE(b.args_of(e->root)[3].boolean);

  // None for an optional parameter means its default.
  e = parse_target("transformNull(a.b, None)");
  ASSERT_TRUE(e);
  b = bound(*e);
  EXPECT_TRUE(b.args_of(e->root)[1].is_default);
  EXPECT_EQ(b.args_of(e->root)[1].kind, ValueKind::kNumber);
  EXPECT_EQ(b.args_of(e->root)[1].number, 0);
  EXPECT_EQ(b.args_of(e->root)[2].kind, ValueKind::kNone);
}

TEST(RenderFunctions, MultipleParametersTakeEveryRemainingArgument) {
  auto e = parse_target("sumSeries(a.*, b.*, scale(c.*, 2))");
  ASSERT_TRUE(e);
  Binding b = bound(*e);
  auto args = b.args_of(e->root);
  ASSERT_EQ(args.size(), 3u);
  for (const BoundArg& a : args) {
    EXPECT_EQ(a.param, 0);
    EXPECT_EQ(a.kind, ValueKind::kSeries);
  }

  e = parse_target("asPercent(a.*)");
  ASSERT_TRUE(e);
  b = bound(*e);
  ASSERT_EQ(b.args_of(e->root).size(), 2u);  // seriesList, total (None); no nodes
  EXPECT_EQ(b.args_of(e->root)[1].kind, ValueKind::kNone);

  e = parse_target("asPercent(a.*, b.*, 0, 'host')");
  ASSERT_TRUE(e);
  b = bound(*e);
  args = b.args_of(e->root);
  ASSERT_EQ(args.size(), 4u);
  EXPECT_EQ(args[1].kind, ValueKind::kSeries);
  EXPECT_EQ(args[2].param, 2);
  EXPECT_EQ(args[2].number, 0);
  EXPECT_EQ(args[3].param, 2);
  EXPECT_EQ(args[3].text, "host");
}

TEST(RenderFunctions, APathAloneBindsToNothing) {
  auto e = parse_target("stele.app.web.requests.count");
  ASSERT_TRUE(e);
  Binding b = bound(*e);
  EXPECT_TRUE(b.args.empty());
  EXPECT_EQ(b.calls[e->root].fn, nullptr);
}

}  // namespace
}  // namespace stele::metrics
