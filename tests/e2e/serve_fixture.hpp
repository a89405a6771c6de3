// The serve gtests' common fixture: the bundled model (2 threads) and its tokenizer, loaded once per
// test suite, as `retnet serve` would load them.
#pragma once
#include <gtest/gtest.h>

#include <memory>

#include "retnet/retnet.hpp"
#include "test_util.hpp"

namespace retnet::test {

class BundledModelSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = load_bundled(2);
    tok_ = new Tokenizer(Tokenizer::load(bundled_dir()));
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
    model_.reset();
  }
  static inline std::shared_ptr<const Model> model_;
  static inline Tokenizer* tok_ = nullptr;
};

}  // namespace retnet::test
