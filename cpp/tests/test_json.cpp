#include <string>

#include "check.hpp"
#include "edge_sdk/runtime/json.hpp"

using edge::json::parse;
using edge::json::ParseError;
using edge::json::Value;

EDGE_TEST(parses_all_value_kinds) {
  const Value v = parse(R"( {"a": 1, "b": -2.5e3, "c": [true, false, null], "d": "x\"y\\z\n", "e": {}, "f": []} )");
  CHECK(v.is_object());
  CHECK(v.find("a")->is_integer() && v.find("a")->as_int() == 1);
  CHECK(!v.find("b")->is_integer() && v.find("b")->as_double() == -2500.0);
  CHECK(v.find("c")->as_array().size() == 3);
  CHECK(v.find("c")->as_array()[0].as_bool() && v.find("c")->as_array()[2].is_null());
  CHECK(v.find("d")->as_string() == "x\"y\\z\n");
  CHECK(v.find("e")->as_object().empty() && v.find("f")->as_array().empty());
  CHECK(v.find("zz") == nullptr);
  // key order is kept
  CHECK(v.as_object()[0].first == "a" && v.as_object()[5].first == "f");
}

EDGE_TEST(numbers_exact) {
  CHECK(parse("9007199254740993").as_int() == 9007199254740993LL);  // beyond double precision
  CHECK(parse("-0").is_integer());
  CHECK(parse("0.1").as_double() == 0.1);
}

EDGE_TEST(unicode_escapes_and_utf8) {
  CHECK(parse(R"("\u00e9\u20ac\ud83d\ude00")").as_string() == "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  CHECK(parse("\"\xc3\xa9\"").as_string() == "\xc3\xa9");
  CHECK_THROWS(parse(R"("\ud83d")"));        // lone high surrogate
  CHECK_THROWS(parse(R"("\ude00")"));        // lone low surrogate
  CHECK_THROWS(parse("\"\xc0\xaf\""));       // overlong
  CHECK_THROWS(parse("\"\xed\xa0\x80\""));   // encoded surrogate
  CHECK_THROWS(parse("\"\xe2\x82\""));       // truncated
}

EDGE_TEST(rejects_malformed_with_position) {
  const char* bad[] = {"", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "1.", "-", "1e", "tru", "nul",
                       "\"abc", "[1 2]", "{\"a\":1}x", "{'a':1}", "\"\t\"", "\"\\x\"", "1e400", "{\"a\":1,\"a\":2}"};
  for (const char* b : bad) {
    bool thrown = false;
    try {
      parse(b, "doc.json");
    } catch (const ParseError& e) {
      thrown = true;
      CHECK(std::string(e.what()).rfind("doc.json:", 0) == 0);
    }
    if (!thrown) std::printf("  accepted bad JSON: %s\n", b);
    CHECK(thrown);
  }
  try {
    parse("{\n  \"a\": 1,\n  \"b\": ?\n}", "m.json");
    CHECK(false);
  } catch (const ParseError& e) {
    CHECK(std::string(e.what()).find("m.json:3:8:") == 0);
  }
}

EDGE_TEST(depth_limit) {
  std::string deep(200, '[');
  deep += std::string(200, ']');
  CHECK_THROWS(parse(deep));
  std::string ok(100, '[');
  ok += std::string(100, ']');
  CHECK(parse(ok).is_array());
}

EDGE_TEST(dump_round_trips) {
  const std::string text = R"({"s":"a\"b\\c\n\u0001","i":-42,"d":0.1,"big":1.5e300,"arr":[1,2.5,"x",null,true,{"k":[]}]})";
  const Value v = parse(text);
  const Value again = parse(v.dump());
  CHECK(v == again);
  CHECK(again.find("d")->as_double() == 0.1);
  CHECK(parse(parse("[1e-7]").dump()).as_array()[0].as_double() == 1e-7);
}

EDGE_TEST(equality_ignores_key_order_not_values) {
  CHECK(parse(R"({"a":1,"b":[1,2]})") == parse(R"({"b":[1,2],"a":1})"));
  CHECK(parse(R"({"a":1})") != parse(R"({"a":2})"));
  CHECK(parse(R"({"a":1})") != parse(R"({"a":1,"b":0})"));
  CHECK(parse("[1,2]") != parse("[2,1]"));
  CHECK(parse("1") == parse("1.0"));  // same number
}

EDGE_TEST(copies_are_independent) {
  Value a = parse(R"({"x":{"y":1}})");
  Value b = a;
  b.set("z", Value::integer(3));
  CHECK(a.find("z") == nullptr);
  CHECK(b.find("z") != nullptr);
}

EDGE_TEST_MAIN()
