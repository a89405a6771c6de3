// `retnet serve`'s conversation states below HTTP: the state container (state_blob.hpp: round trip,
// every corruption refused with its name), the on-disk tier (disk_cache.hpp: the index, what startup
// skips, LRU within the budget, files that go away), the RAM tier's export by id, and the scheduler
// resuming a conversation from the disk tier in a fresh process's place. The HTTP routes, two
// replicas and restarts are tested in tests/serve/test_states.py (ctest serve_openai).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "serve/disk_cache.hpp"
#include "serve/scheduler.hpp"
#include "serve/state_blob.hpp"
#include "serve_fixture.hpp"
#include "test_util.hpp"

namespace {

using namespace retnet;
using namespace retnet::serve;
using retnet::test::Contains;
using retnet::test::error_of;
namespace fs = std::filesystem;

class ServeStates : public retnet::test::BundledModelSuite {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("serve_states_" + std::to_string(getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  uint64_t fp() const { return model_->info().fingerprint; }
  // A real state: the snapshot after prefilling `text`, with its tokens and last logits.
  StateBlob state_of(const std::string& text) const {
    StateBlob b;
    b.fingerprint = fp();
    b.tokens = tok_->encode(text, true);
    Session s(model_);
    const auto lg = s.prefill(b.tokens);
    b.logits.assign(lg.begin(), lg.end());
    b.state = s.save_state();
    return b;
  }
  static std::vector<uint8_t> encode(const StateBlob& b) {
    return encode_state_blob(b.fingerprint, b.tokens, b.logits, b.state);
  }
  StateBlobLimits limits() const { return StateBlobLimits{1000, model_->info().vocab_size}; }
  // Rewrites the trailing checksum, written out here from its definition (state_blob.hpp: FNV-1a 64
  // over the bytes before the snapshot, continued over the snapshot's last 8 bytes), so that a forged
  // field is reached by the check it is meant for.
  static void reseal(std::vector<uint8_t>& b) {
    uint64_t sb = 0;
    std::memcpy(&sb, b.data() + 40, 8);
    const size_t head = sb >= 8 && sb + 8 + 48 <= b.size() ? b.size() - 8 - size_t(sb) : b.size() - 8;
    uint64_t h = 0xcbf29ce484222325ull;
    const auto add = [&](size_t from, size_t to) {
      for (size_t i = from; i < to; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
    };
    add(0, head);
    if (head != b.size() - 8) add(b.size() - 16, b.size() - 8);
    std::memcpy(b.data() + b.size() - 8, &h, 8);
  }
  std::string decode_error(const std::vector<uint8_t>& b) const {
    return error_of([&] { decode_state_blob(b, limits()); });
  }

  std::string dir_;
};

TEST_F(ServeStates, BlobRoundTripAndIds) {
  const StateBlob a = state_of("In the beginning God created");
  const std::vector<uint8_t> bytes = encode(a);
  EXPECT_EQ(bytes.size(), state_blob_bytes(int64_t(a.tokens.size()), int64_t(a.logits.size()), a.state.size()));
  const StateBlob b = decode_state_blob(bytes, limits());
  EXPECT_EQ(b.fingerprint, a.fingerprint);
  EXPECT_EQ(b.tokens, a.tokens);
  EXPECT_EQ(b.logits, a.logits);
  EXPECT_EQ(b.state, a.state);
  // The snapshot inside still loads, and holds exactly these tokens.
  Session s(model_);
  s.load_state(b.state);
  EXPECT_TRUE(s.history_matches(b.tokens));
  // Without logits too.
  EXPECT_TRUE(decode_state_blob(encode_state_blob(a.fingerprint, a.tokens, {}, a.state), limits()).logits.empty());

  // Ids: 32 hex digits, a function of (fingerprint, tokens) only, each prefix's id on the way.
  const std::string id = state_id(fp(), a.tokens);
  EXPECT_TRUE(is_state_id(id));
  EXPECT_EQ(id, state_id(fp(), b.tokens));
  EXPECT_NE(id, state_id(fp() ^ 1, a.tokens));
  EXPECT_NE(id, state_id(fp(), std::span(a.tokens).first(a.tokens.size() - 1)));
  StateHasher h(fp());
  for (size_t k = 0; k < a.tokens.size(); ++k) {
    h.add(a.tokens[k]);
    EXPECT_EQ(h.id(), state_id(fp(), std::span(a.tokens).first(k + 1)));
  }
  for (const char* bad : {"", "0123", "0123456789abcdef0123456789ABCDEF", "0123456789abcdef0123456789abcdeg",
                          "0123456789abcdef0123456789abcdef0"})
    EXPECT_FALSE(is_state_id(bad)) << bad;
}

TEST_F(ServeStates, BlobCorruptionsAreNamed) {
  const StateBlob a = state_of("And God said, Let there be light");
  const std::vector<uint8_t> good = encode(a);
  const size_t n = a.tokens.size(), v = a.logits.size();
  const auto with = [&](auto&& change, bool seal = true) {
    std::vector<uint8_t> b = good;
    change(b);
    if (seal) reseal(b);
    return b;
  };
  const auto set64 = [](std::vector<uint8_t>& b, size_t at, uint64_t x) { std::memcpy(b.data() + at, &x, 8); };

  EXPECT_TRUE(Contains(decode_error({}), "bad magic"));
  EXPECT_TRUE(Contains(decode_error(with([](auto& b) { b[0] = 'X'; })), "bad magic"));
  EXPECT_TRUE(
      Contains(decode_error(std::vector<uint8_t>(good.begin(), good.begin() + 30)), "inside the 48-byte header"));
  EXPECT_TRUE(Contains(decode_error(with([](auto& b) { b[8] = 9; })), "container version 9"));
  EXPECT_TRUE(Contains(decode_error(with([](auto& b) { b[12] = 1; })), "reserved"));
  EXPECT_TRUE(Contains(decode_error(with([&](auto& b) { set64(b, 24, 0); })), "no tokens"));
  EXPECT_TRUE(Contains(decode_error(with([&](auto& b) { set64(b, 24, 5000); })), "more than the 1000 allowed"));
  EXPECT_TRUE(Contains(decode_error(with([&](auto& b) { set64(b, 32, 7); })), "expected 0 or the vocabulary size"));
  EXPECT_TRUE(Contains(decode_error(with([&](auto& b) { set64(b, 40, ~0ull); })), "truncated"));
  // A cut anywhere, and bytes appended.
  for (size_t cut : {size_t(60), good.size() / 2, good.size() - 1})
    EXPECT_TRUE(Contains(decode_error(std::vector<uint8_t>(good.begin(), good.begin() + ptrdiff_t(cut))), "truncated"))
        << cut;
  EXPECT_TRUE(Contains(decode_error(with([](auto& b) { b.push_back(0); })), "trailing bytes"));
  // One flipped bit in the tokens, the logits, the snapshot's own checksum, the checksum itself.
  for (size_t at : {size_t(48), 48 + 4 * n + 5, good.size() - 12, good.size() - 1})
    EXPECT_TRUE(Contains(decode_error(with([&](auto& b) { b[at] ^= 4; }, false)), "checksum mismatch")) << at;
  // Sealed forgeries: what the checksum cannot catch is checked field by field.
  EXPECT_TRUE(
      Contains(decode_error(with([&](auto& b) { std::memset(b.data() + 48, 0xff, 4); })), "outside the vocabulary"));
  EXPECT_TRUE(Contains(decode_error(with([&](auto& b) {
                         const float nan = std::nanf("");
                         std::memcpy(b.data() + 48 + 4 * n + 8, &nan, 4);
                       })),
                       "NaN or Inf"));
  const size_t inner = 48 + 4 * n + 4 * v;
  EXPECT_TRUE(Contains(decode_error(with([&](auto& b) { b[inner] = 'X'; })), "not a retnet snapshot"));
  EXPECT_TRUE(Contains(decode_error(with([&](auto& b) { b[inner + 16] ^= 1; })), "of another model"));
  // The container names more tokens than its snapshot absorbed.
  std::vector<int32_t> more = a.tokens;
  more.push_back(5);
  EXPECT_TRUE(Contains(decode_error(encode_state_blob(fp(), more, a.logits, a.state)), "holds " + std::to_string(n)));
  // The body of the snapshot inside is covered by its own checksum, which the container's covers:
  // a flip there passes the container and is refused by the library's check, which every state
  // taken from a blob goes through (Session::load_state).
  const std::vector<uint8_t> inner_flip = with([&](auto& b) { b[inner + 200] ^= 1; }, false);
  const StateBlob d = decode_state_blob(inner_flip, limits());
  Session s(model_);
  EXPECT_TRUE(Contains(error_of([&] { s.load_state(d.state); }), "checksum"));
}

TEST_F(ServeStates, RamCacheExportsById) {
  PrefixCache c(64ull << 20, fp());
  const std::vector<int32_t> t = {0, 5, 6, 7};
  const auto e = c.put(t, std::vector<uint8_t>(100, 1), {0.5f});
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->id, state_id(fp(), t));
  const auto f = c.find(e->id);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->tokens, t);
  EXPECT_EQ(f->entry->logits, std::vector<float>{0.5f});
  EXPECT_FALSE(c.find(state_id(fp(), std::span(t).first(3))));
  EXPECT_TRUE(c.erase(e->id));
  EXPECT_FALSE(c.erase(e->id));
  EXPECT_FALSE(c.find(e->id));
  EXPECT_EQ(c.lookup(t), nullptr);
  EXPECT_EQ(c.entries(), 0u);
  EXPECT_EQ(f->entry->state.size(), 100u);  // an entry handed out outlives its eviction
}

TEST_F(ServeStates, DiskIndexSkipsBadFilesAndResumesAfterRestart) {
  const StateBlob a = state_of("In the beginning God created the heaven");
  const StateBlob b = state_of("In the beginning God created the heaven and the earth. And the earth");
  ASSERT_TRUE(std::equal(a.tokens.begin(), a.tokens.end(), b.tokens.begin()));  // a is a prefix of b
  const std::string ida = state_id(fp(), a.tokens), idb = state_id(fp(), b.tokens);
  DiskCache::Options o{dir_, 64ull << 20, fp(), limits(), {}};
  {
    DiskCache d(o);
    EXPECT_EQ(d.files(), 0u);
    for (const StateBlob* s : {&a, &b}) {
      auto e = std::make_shared<PrefixCache::Entry>();
      e->state = s->state;
      e->logits = s->logits;
      e->tokens = int64_t(s->tokens.size());
      d.store_async(state_id(fp(), s->tokens), s->tokens, e);
    }
    d.flush();
    EXPECT_EQ(d.files(), 2u);
    EXPECT_TRUE(fs::exists(d.path_of(ida)));
  }
  // What a restart finds besides: garbage under a state name, a state under another id's name,
  // another model's state (left alone), and files that are not states.
  const auto write = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    std::ofstream(dir_ + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  };
  const std::string junk_id(32, 'a'), moved_id(32, 'b');
  write(junk_id + ".rstate", std::vector<uint8_t>(500, 7));
  fs::copy_file(dir_ + "/" + ida + ".rstate", dir_ + "/" + moved_id + ".rstate");
  StateBlob other = a;
  other.fingerprint = fp() ^ 0x5a5a;
  std::memcpy(other.state.data() + 16, &other.fingerprint, 8);
  const std::string other_id = state_id(other.fingerprint, other.tokens);
  write(other_id + ".rstate", encode(other));
  write("notes.txt", {'h', 'i'});
  write("short.rstate", {'x'});

  std::vector<std::string> logged;
  o.log = [&](const std::string& s) { logged.push_back(s); };
  DiskCache d(o);
  EXPECT_EQ(d.files(), 2u);
  EXPECT_EQ(d.skipped_at_start(), 3u);  // junk, moved, short
  std::string all;
  for (const auto& l : logged) all += l + "\n";
  EXPECT_TRUE(Contains(all, junk_id + ".rstate: state blob: "));
  EXPECT_TRUE(Contains(all, moved_id + ".rstate: its content has another id"));
  EXPECT_TRUE(Contains(all, "short.rstate: not a state file name"));
  EXPECT_TRUE(Contains(all, "2 states of this model"));
  EXPECT_TRUE(Contains(all, "1 of other models"));
  EXPECT_TRUE(fs::exists(dir_ + "/" + other_id + ".rstate"));
  EXPECT_TRUE(fs::exists(dir_ + "/notes.txt"));

  // Deepest prefix: b for a longer prompt, a for one between them, b itself only with its logits.
  std::vector<int32_t> longer = b.tokens;
  longer.push_back(9);
  const auto found = [&](std::span<const int32_t> t) {
    const auto s = d.lookup(t, 0);
    return s ? s->tokens : std::vector<int32_t>{};
  };
  EXPECT_EQ(found(longer), b.tokens);
  EXPECT_EQ(found(std::span(b.tokens).first(a.tokens.size() + 1)), a.tokens);
  EXPECT_EQ(found(b.tokens), b.tokens);
  EXPECT_FALSE(d.lookup(longer, int64_t(b.tokens.size())));  // nothing deeper than what RAM has
  EXPECT_FALSE(d.lookup(std::vector<int32_t>{0, 1, 2}, 0));
  // Export by id checks the file; another model's file is not this server's state.
  ASSERT_TRUE(d.read(idb));
  EXPECT_EQ(decode_state_blob(*d.read(idb), limits()).tokens, b.tokens);
  EXPECT_FALSE(d.read(other_id));
  EXPECT_FALSE(d.read(junk_id));
  // A file deleted behind the index's back (another server sharing the directory) is a miss.
  fs::remove(d.path_of(idb));
  EXPECT_EQ(found(longer), a.tokens);
  EXPECT_EQ(d.files(), 1u);
  EXPECT_TRUE(d.erase(ida));
  EXPECT_FALSE(d.erase(ida));
  EXPECT_EQ(d.files(), 0u);
}

TEST_F(ServeStates, DiskBudgetEvictsLeastRecentlyUsed) {
  std::vector<StateBlob> s;
  for (const char* t : {"In the beginning", "And God said", "Blessed are the meek", "The LORD is my shepherd"})
    s.push_back(state_of(t));
  const uint64_t one = encode(s[0]).size();
  DiskCache d({dir_, one * 5 / 2, fp(), limits(), {}});
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(
        d.store(state_id(fp(), s[size_t(i)].tokens), encode(s[size_t(i)]), int64_t(s[size_t(i)].tokens.size()), true));
    if (i == 1) ASSERT_TRUE(d.read(state_id(fp(), s[0].tokens)));  // s[0] used: s[1] is now the oldest
  }
  EXPECT_EQ(d.files(), 2u);
  EXPECT_LE(d.bytes(), one * 5 / 2);
  EXPECT_TRUE(d.read(state_id(fp(), s[0].tokens)));
  EXPECT_FALSE(d.read(state_id(fp(), s[1].tokens)));
  EXPECT_FALSE(fs::exists(d.path_of(state_id(fp(), s[1].tokens))));
  // Larger than the whole budget: not written.
  DiskCache tiny({dir_ + "/tiny", one / 2, fp(), limits(), {}});
  EXPECT_FALSE(tiny.store(state_id(fp(), s[3].tokens), encode(s[3]), int64_t(s[3].tokens.size()), true));
  EXPECT_EQ(tiny.files(), 0u);
  // A directory that cannot be one.
  std::ofstream(dir_ + "/file") << "x";
  EXPECT_TRUE(Contains(error_of([&] { DiskCache bad({dir_ + "/file", one, fp(), limits(), {}}); }), "not a directory"));
}

// A reply's state goes to the disk tier; a scheduler with an empty RAM tier (a restarted server)
// resumes the next turn from it, prefills only the new tokens, and continues as a cold run does.
TEST_F(ServeStates, SchedulerResumesFromDiskAfterRestart) {
  const std::vector<int32_t> prompt = tok_->encode("And God said, Let there be light", true);
  const auto run = [&](Scheduler& sched, const std::vector<int32_t>& ids, int64_t n) {
    JobParams p;
    p.prompt = ids;
    p.max_tokens = n;
    auto j = std::make_shared<Job>(p);
    EXPECT_EQ(sched.submit({j}), Scheduler::Submit::Ok);
    Job::Update u;
    std::string text;
    do {
      u = j->next(std::chrono::milliseconds(100));
      text += u.text;
    } while (!u.finished);
    EXPECT_EQ(u.error_status, 0) << u.error;
    return std::make_pair(text, u.usage);
  };
  DiskCache::Options o{dir_, 64ull << 20, fp(), limits(), {}};
  std::vector<int32_t> turn2;
  std::string id;
  {
    DiskCache d(o);
    Scheduler sched(model_, *tok_, SchedulerOptions{2, 4, 0, &d});  // no RAM tier at all
    const auto r = run(sched, prompt, 6);
    id = r.second.state_id;
    EXPECT_EQ(r.second.state_tokens, int64_t(prompt.size()) + 6);
    d.flush();
    ASSERT_TRUE(d.read(id));
    turn2 = decode_state_blob(*d.read(id), limits()).tokens;
    EXPECT_EQ(id, state_id(fp(), turn2));
  }
  const std::vector<int32_t> after = tok_->encode(" and there was light", false);
  turn2.insert(turn2.end(), after.begin(), after.end());
  DiskCache d(o);
  Scheduler sched(model_, *tok_, SchedulerOptions{2, 4, 16ull << 20, &d});
  const auto r = run(sched, turn2, 8);
  EXPECT_EQ(r.second.cached_tokens, int64_t(prompt.size()) + 6);
  EXPECT_EQ(r.second.prompt_tokens, int64_t(turn2.size()));
  Session cold(model_);
  GenerateOptions go;
  go.max_tokens = 8;
  EXPECT_EQ(r.first, cold.generate(*tok_, turn2, 0, go).text);
}

}  // namespace
