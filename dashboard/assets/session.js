// A Dash request refused for want of a session (expired or logged out elsewhere): go to the login form
// instead of leaving a silently frozen screen.
(function () {
  const original = window.fetch;
  window.fetch = async function (...args) {
    const response = await original.apply(this, args);
    const url = String(args[0] && args[0].url ? args[0].url : args[0]);
    if (response.status === 401 && url.includes("/_dash-")) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
    }
    return response;
  };
})();
