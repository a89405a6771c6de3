// Moved-from handles: every member function of a moved-from Session, Tokenizer or StreamDecoder
// throws retnet::Error saying so (it used to dereference a null pointer), and a Model cannot be
// moved from at all.
#include <gtest/gtest.h>

#include <filesystem>
#include <type_traits>

#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

template <class F>
void expect_moved_from(const char* what, F&& f) {
  try {
    f();
    ADD_FAILURE() << what << ": no exception";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "moved from")) << what;
  } catch (...) {
    ADD_FAILURE() << what << ": not a retnet::Error";
  }
}

class MovedFrom : public TempDirTest {};

TEST_F(MovedFrom, EverySessionMemberFunctionThrows) {
  auto model = load_fixture("ts_swish_scaled");
  const Tokenizer tok = Tokenizer::load(bundled_dir());
  Session a(model);
  a.prefill(std::vector<int32_t>{1, 2, 3});
  const std::vector<uint8_t> snap = a.save_state();
  const std::string file = (dir_ / "snap").string();
  a.save_state_file(file);
  Session b(std::move(a));
  Session c(model);
  const std::vector<int32_t> one = {1};
  expect_moved_from("prefill", [&] { a.prefill(one); });
  expect_moved_from("decode", [&] { a.decode(1); });
  expect_moved_from("decode_batch alone", [&] {
    Session* ss[] = {&a};
    Session::decode_batch(ss, one);
  });
  expect_moved_from("decode_batch second", [&] {
    Session* ss[] = {&c, &a};
    const int32_t t[] = {1, 2};
    Session::decode_batch(ss, t);
  });
  EXPECT_EQ(c.position(), 0);  // the batch was refused before touching anyone
  expect_moved_from("logits", [&] { a.logits(); });
  expect_moved_from("generate", [&] { a.generate(tok, "In"); });
  expect_moved_from("stats", [&] { a.stats(); });
  expect_moved_from("position", [&] { a.position(); });
  expect_moved_from("reset", [&] { a.reset(); });
  expect_moved_from("save_state", [&] { a.save_state(); });
  expect_moved_from("load_state", [&] { a.load_state(snap); });
  expect_moved_from("save_state_file", [&] { a.save_state_file((dir_ / "other").string()); });
  EXPECT_FALSE(fs::exists(dir_ / "other"));
  expect_moved_from("load_state_file", [&] { a.load_state_file(file); });
  expect_moved_from("clone", [&] { a.clone(); });
  expect_moved_from("model", [&] { a.model(); });
  // Moving again, from or into it, is fine; so is assigning a new session to it.
  Session d(std::move(a));
  expect_moved_from("position after a second move", [&] { d.position(); });
  a = Session(model);
  EXPECT_EQ(a.position(), 0);
  EXPECT_EQ(b.position(), 3);  // the moved-to session has the state
  b.decode(4);
  EXPECT_EQ(b.position(), 4);
}

TEST(MovedFromTokenizer, EveryMemberFunctionThrows) {
  Tokenizer t = Tokenizer::load(bundled_dir());
  Tokenizer u(std::move(t));
  const int32_t id = 5;
  expect_moved_from("encode", [&] { t.encode("In"); });
  expect_moved_from("decode", [&] { t.decode(std::span<const int32_t>(&id, 1)); });
  expect_moved_from("token_bytes", [&] { t.token_bytes(id); });
  expect_moved_from("token_text", [&] { t.token_text(id); });
  expect_moved_from("vocab_size", [&] { t.vocab_size(); });
  expect_moved_from("bos_id", [&] { t.bos_id(); });
  expect_moved_from("eos_id", [&] { t.eos_id(); });
  expect_moved_from("is_special", [&] { t.is_special(id); });
  expect_moved_from("token_to_id", [&] { t.token_to_id("the"); });
  expect_moved_from("stream_decoder", [&] { t.stream_decoder(); });
  EXPECT_FALSE(u.encode("In the beginning").empty());
  t = u;  // copies share the state
  EXPECT_EQ(t.encode("In"), u.encode("In"));

  Tokenizer::StreamDecoder sd = u.stream_decoder();
  Tokenizer::StreamDecoder sd2(std::move(sd));
  expect_moved_from("StreamDecoder::push", [&] { sd.push(id); });
  expect_moved_from("StreamDecoder::flush", [&] { sd.flush(); });
  sd2.push(id);
  sd2.flush();
  sd = u.stream_decoder();
  sd.push(id);
}

// A Model is only ever held through the shared_ptr load() gives: it cannot be moved from.
static_assert(!std::is_move_constructible_v<Model> && !std::is_move_assignable_v<Model>);
static_assert(!std::is_copy_constructible_v<Model> && !std::is_copy_assignable_v<Model>);

}  // namespace
}  // namespace retnet::test
