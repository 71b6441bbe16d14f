// The Router without sockets: matching, parameters, methods, authentication, error mapping.
#include <gtest/gtest.h>

#include <sodium.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "federation/store/database.h"
#include "node/http/router.h"
#include "node/staff/staff.h"

namespace tongban {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;

nlohmann::json parse(const HttpResponse& res) { return nlohmann::json::parse(res.body, nullptr, false); }

HttpRequest request(const std::string& method, const std::string& path) {
  HttpRequest req;
  req.method = method;
  req.path = path;
  return req;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DatabaseOptions options;
    options.path = ":memory:";
    auto db = Database::open(options);
    ASSERT_TRUE(db.isOk()) << db.status().toString();
    db_ = std::move(db).value();
    StaffOptions staff_options;
    staff_options.pwhash_opslimit = crypto_pwhash_OPSLIMIT_MIN;
    staff_options.pwhash_memlimit = crypto_pwhash_MEMLIMIT_MIN;
    auto staff = StaffDirectory::open(*db_, staff_options);
    ASSERT_TRUE(staff.isOk());
    staff_ = std::make_unique<StaffDirectory>(std::move(staff).value());
    ASSERT_TRUE(staff_->addUser("zhangsan", "张三", "correct horse", {Role::kClerk}, kT0).isOk());
    auto session = staff_->login("zhangsan", "correct horse", kT0);
    ASSERT_TRUE(session.isOk());
    token_ = session->token;

    // Echoes what the handler saw, so tests can assert on params, query and caller.
    auto echo = [](const std::string& route) {
      return [route](const HttpRequest& req, const Principal* who) {
        nlohmann::json body{{"route", route}, {"params", req.params}, {"query", req.query}};
        body["caller"] = who ? nlohmann::json(who->username) : nlohmann::json(nullptr);
        if (who) body["clerk"] = who->has(Role::kClerk);
        return jsonResponse(200, body);
      };
    };
    router_.add("GET", "/health", Access::kPublic, echo("health"));
    router_.add("GET", "/api/cases/{number}/steps", Access::kAuthenticated, echo("steps"));
    router_.add("POST", "/api/cases/{number}/steps", Access::kAuthenticated, echo("add-step"));
    router_.add("GET", "/api/cases/{number}", Access::kAuthenticated, echo("case"));
    router_.add("GET", "/api/cases/search", Access::kAuthenticated, echo("search"));
    router_.add("GET", "/api/boom", Access::kPublic,
                [](const HttpRequest&, const Principal*) -> HttpResponse { throw std::runtime_error("bug"); });
    router_.add("GET", "/api/approve", Access::kAuthenticated, [](const HttpRequest&, const Principal* who) {
      if (!who->has(Role::kApprover)) return forbidden("needs role approver");
      return jsonResponse(200, {{"ok", true}});
    });
  }

  HttpResponse send(HttpRequest req, TimeMs now = kT0 + 1) { return router_.dispatch(req, staff_.get(), now); }
  HttpRequest withToken(HttpRequest req) {
    req.headers["authorization"] = "Bearer " + token_;
    return req;
  }

  std::unique_ptr<Database> db_;
  std::unique_ptr<StaffDirectory> staff_;
  std::string token_;
  Router router_;
};

TEST_F(RouterTest, PublicRouteNeedsNoTokenAndGetsNoPrincipal) {
  auto res = send(request("GET", "/health"));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "application/json; charset=utf-8");
  EXPECT_TRUE(parse(res)["caller"].is_null());
}

TEST_F(RouterTest, AuthenticatedHandlerGetsThePrincipalOfTheToken) {
  auto res = send(withToken(request("GET", "/api/cases/A-1/steps")));
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(parse(res)["caller"], "zhangsan");
  EXPECT_EQ(parse(res)["clerk"], true);
}

TEST_F(RouterTest, RouteParamsAreExtractedAndPercentDecoded) {
  auto res = send(withToken(request("GET", "/api/cases/%E4%BD%9B%E5%B1%B1%2F001/steps")));
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(parse(res)["route"], "steps");
  EXPECT_EQ(parse(res)["params"]["number"], "佛山/001");
}

TEST_F(RouterTest, QueryStringIsParsedAndDecoded) {
  auto query = parseQuery("q=%E5%BC%A0+%E4%B8%89&page=2&flag&bad=%G1");
  EXPECT_EQ(query["q"], "张 三");
  EXPECT_EQ(query["page"], "2");
  EXPECT_EQ(query["flag"], "");
  EXPECT_EQ(query["bad"], "%G1");
}

TEST_F(RouterTest, LiteralSegmentBeatsParameterWhateverTheOrderOfAdd) {
  auto search = send(withToken(request("GET", "/api/cases/search")));
  EXPECT_EQ(parse(search)["route"], "search");
  auto one = send(withToken(request("GET", "/api/cases/B-7")));
  EXPECT_EQ(parse(one)["route"], "case");
  EXPECT_EQ(parse(one)["params"]["number"], "B-7");
}

TEST_F(RouterTest, UnknownPathIsA404JsonError) {
  for (const char* path : {"/nope", "/api/cases/1/steps/2", "/api/cases/1/steps/", "/"}) {
    auto res = send(withToken(request("GET", path)));
    EXPECT_EQ(res.status, 404) << path;
    EXPECT_EQ(parse(res)["error"]["code"], "NOT_FOUND") << path;
  }
}

TEST_F(RouterTest, KnownPathWithAnotherMethodIsA405ListingTheAllowedOnes) {
  auto res = send(withToken(request("DELETE", "/api/cases/1/steps")));
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(parse(res)["error"]["code"], "METHOD_NOT_ALLOWED");
  ASSERT_EQ(res.headers.size(), 1u);
  EXPECT_EQ(res.headers[0].first, "Allow");
  EXPECT_EQ(res.headers[0].second, "GET, POST");
}

TEST_F(RouterTest, MissingOrMalformedBearerTokenIs401) {
  auto none = send(request("GET", "/api/cases/1"));
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(parse(none)["error"]["code"], "UNAUTHORIZED");
  EXPECT_EQ(none.headers.at(0), (std::pair<std::string, std::string>{"WWW-Authenticate", "Bearer"}));

  HttpRequest basic = request("GET", "/api/cases/1");
  basic.headers["authorization"] = "Basic emhhbmdzYW46eA==";
  EXPECT_EQ(send(basic).status, 401);

  HttpRequest unknown = request("GET", "/api/cases/1");
  unknown.headers["authorization"] = "Bearer " + std::string(64, '0');
  auto res = send(unknown);
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(parse(res)["error"]["message"], "unknown token, log in again");
}

TEST_F(RouterTest, BearerSchemeIsCaseInsensitive) {
  HttpRequest req = request("GET", "/api/cases/1");
  req.headers["authorization"] = "bearer  " + token_;
  EXPECT_EQ(send(req).status, 200);
}

TEST_F(RouterTest, ExpiredTokenIs401WithTheExpiryMessage) {
  auto res = send(withToken(request("GET", "/api/cases/1")), kT0 + kDefaultSessionLifetimeMs);
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(parse(res)["error"]["message"], "session expired, log in again");
}

TEST_F(RouterTest, AuthenticatedRouteWithoutStaffDirectoryIsAnInternalError) {
  HttpRequest req = withToken(request("GET", "/api/cases/1"));
  EXPECT_EQ(router_.dispatch(req, nullptr, kT0).status, 500);
}

TEST_F(RouterTest, HandlerChecksRolesAndAnswers403) {
  auto res = send(withToken(request("GET", "/api/approve")));
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(parse(res)["error"]["code"], "FORBIDDEN");
}

TEST_F(RouterTest, ThrowingHandlerGives500AndTheRouterKeepsServing) {
  auto res = send(request("GET", "/api/boom"));
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(parse(res)["error"]["code"], "INTERNAL");
  EXPECT_EQ(send(request("GET", "/health")).status, 200);
}

TEST_F(RouterTest, MalformedPercentEscapeInPathIs400) {
  EXPECT_EQ(send(withToken(request("GET", "/api/cases/%ZZ"))).status, 400);
  EXPECT_EQ(send(withToken(request("GET", "/api/cases/%4"))).status, 400);
}

// Async routes: the handler answers later through `respond` (a lookup that asks the parent).
class AsyncRouterTest : public RouterTest {
 protected:
  void SetUp() override {
    RouterTest::SetUp();
    router_.addAsync("GET", "/api/later", Access::kAuthenticated,
                     [this](const HttpRequest& req, const Principal* who, Router::Respond respond) {
                       pending_.push_back([respond, user = who->username, q = req.query] {
                         respond(jsonResponse(200, {{"caller", user}, {"query", q}}));
                       });
                     });
    router_.addAsync("GET", "/api/now", Access::kPublic,
                     [](const HttpRequest&, const Principal*, Router::Respond respond) {
                       respond(jsonResponse(200, {{"now", true}}));
                     });
    router_.addAsync("GET", "/api/twice", Access::kPublic,
                     [](const HttpRequest&, const Principal*, Router::Respond respond) {
                       respond(jsonResponse(200, {{"first", true}}));
                       respond(jsonResponse(500, {{"second", true}}));
                     });
    router_.addAsync("GET", "/api/async-boom", Access::kPublic,
                     [](const HttpRequest&, const Principal*, Router::Respond) { throw std::runtime_error("bug"); });
  }

  // Dispatches and collects every answer the callback receives.
  std::vector<HttpResponse>* sendAsync(HttpRequest req) {
    answers_.push_back(std::make_unique<std::vector<HttpResponse>>());
    auto* out = answers_.back().get();
    router_.dispatchAsync(req, staff_.get(), kT0 + 1, [out](HttpResponse res) { out->push_back(std::move(res)); });
    return out;
  }

  std::vector<std::function<void()>> pending_;
  std::vector<std::unique_ptr<std::vector<HttpResponse>>> answers_;
};

TEST_F(AsyncRouterTest, AsyncRouteAnswersWhenTheHandlerRespondsLater) {
  HttpRequest req = withToken(request("GET", "/api/later"));
  req.query["holder"] = "X";
  auto* answers = sendAsync(req);
  EXPECT_TRUE(answers->empty());
  ASSERT_EQ(pending_.size(), 1u);
  pending_[0]();
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].status, 200);
  EXPECT_EQ(parse((*answers)[0])["caller"], "zhangsan");
  EXPECT_EQ(parse((*answers)[0])["query"]["holder"], "X");
}

TEST_F(AsyncRouterTest, SyncRoutesAndErrorsAnswerAtOnceThroughDispatchAsync) {
  auto* health = sendAsync(request("GET", "/health"));
  ASSERT_EQ(health->size(), 1u);
  EXPECT_EQ((*health)[0].status, 200);
  auto* missing = sendAsync(request("GET", "/nope"));
  ASSERT_EQ(missing->size(), 1u);
  EXPECT_EQ((*missing)[0].status, 404);
}

TEST_F(AsyncRouterTest, AsyncRouteChecksTheTokenBeforeCallingTheHandler) {
  auto* answers = sendAsync(request("GET", "/api/later"));
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].status, 401);
  EXPECT_TRUE(pending_.empty());
}

TEST_F(AsyncRouterTest, SecondAnswerIsDropped) {
  auto* answers = sendAsync(request("GET", "/api/twice"));
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ(parse((*answers)[0])["first"], true);
}

TEST_F(AsyncRouterTest, AsyncHandlerThatThrowsBeforeAnsweringGives500AndTheRouterKeepsServing) {
  auto* answers = sendAsync(request("GET", "/api/async-boom"));
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].status, 500);
  EXPECT_EQ(parse((*answers)[0])["error"]["code"], "INTERNAL");
  EXPECT_EQ(send(request("GET", "/health")).status, 200);
}

TEST_F(AsyncRouterTest, SyncDispatchTakesAnImmediateAsyncAnswerAndRefusesToWaitForALaterOne) {
  EXPECT_EQ(send(request("GET", "/api/now")).status, 200);
  auto later = send(withToken(request("GET", "/api/later")));
  EXPECT_EQ(later.status, 500);
  EXPECT_NE(parse(later)["error"]["message"].get<std::string>().find("asynchronously"), std::string::npos);
}

TEST_F(AsyncRouterTest, AsyncAndSyncRoutesShareOneNamespace) {
  auto* answers = sendAsync(withToken(request("POST", "/api/later")));
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].status, 405);
}

TEST(HttpErrorMappingTest, ErrorCodesMapToHttpStatuses) {
  EXPECT_EQ(errorResponse(Status(ErrorCode::kInvalidArgument, "x")).status, 400);
  EXPECT_EQ(errorResponse(Status(ErrorCode::kMalformed, "x")).status, 400);
  EXPECT_EQ(errorResponse(Status(ErrorCode::kUnauthorized, "x")).status, 401);
  EXPECT_EQ(errorResponse(Status(ErrorCode::kPermissionDenied, "x")).status, 403);
  EXPECT_EQ(errorResponse(Status(ErrorCode::kNotFound, "x")).status, 404);
  EXPECT_EQ(errorResponse(Status(ErrorCode::kAlreadyExists, "x")).status, 409);
  EXPECT_EQ(errorResponse(Status(ErrorCode::kFailedPrecondition, "x")).status, 409);
  EXPECT_EQ(errorResponse(Status(ErrorCode::kOversize, "x")).status, 413);
  EXPECT_EQ(errorResponse(Status(ErrorCode::kResourceExhausted, "x")).status, 429);
  EXPECT_EQ(errorResponse(Status(ErrorCode::kUnavailable, "x")).status, 503);
  EXPECT_EQ(errorResponse(Status(ErrorCode::kTimeout, "x")).status, 504);
  EXPECT_EQ(errorResponse(Status(ErrorCode::kIo, "x")).status, 500);
  EXPECT_EQ(errorResponse(Status::ok()).status, 204);

  auto res = errorResponse(Status(ErrorCode::kFailedPrecondition, "case already concluded"));
  auto body = nlohmann::json::parse(res.body);
  EXPECT_EQ(body["error"]["code"], "FAILED_PRECONDITION");
  EXPECT_EQ(body["error"]["message"], "case already concluded");
}

}  // namespace
}  // namespace tongban
