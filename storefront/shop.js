// The demo storefront's shared script: catalog, cart, sign-in, the consent banner and the
// tracker. The shop's own state (cart, consent choice, signed-in customer) is the shop's, in
// localStorage under shop_*; the tracker's lives under ept_* and only after consent.
import config from "./config.js";

const tracker = await import(config.trackerUrl);

export const CATALOG = [
  { id: 1001, name: "Noise-cancelling headphones", category: "electronics", price: "199.00" },
  { id: 1002, name: "USB-C charger 65 W", category: "electronics", price: "39.90" },
  { id: 2001, name: "Merino wool sweater", category: "clothing", price: "89.00" },
  { id: 3001, name: "Cast-iron skillet", category: "home_garden", price: "45.50" },
  { id: 4001, name: "Trail running shoes", category: "sports", price: "129.99" },
  { id: 5001, name: "The Pragmatic Programmer", category: "books", price: "42.00" },
  { id: 6001, name: "Vitamin C serum", category: "beauty", price: "24.90" },
  { id: 7001, name: "Wooden train set", category: "toys", price: "59.00" },
];
export const product = (id) => CATALOG.find((p) => p.id === Number(id));

const get = (k, fallback) => JSON.parse(localStorage.getItem(`shop_${k}`) ?? "null") ?? fallback;
const put = (k, v) => localStorage.setItem(`shop_${k}`, JSON.stringify(v));

export const cart = () => get("cart", []);
export function setCart(lines) {
  put("cart", lines);
  render();
}
export const customer = () => get("customer", null);

tracker.init({
  endpoint: config.endpoint,
  key: config.key,
  consent: get("consent", null) === "granted",
  flushMs: config.flushMs ?? 200,
  currency: "USD",
});
// a shopper who signed in before consenting is identified once tracking may start
if (customer()) tracker.identify(customer());
export { tracker };

function render() {
  const who = customer();
  document.querySelector("#account").innerHTML = who
    ? `Signed in as customer <b id="customer-id">${who}</b>`
    : `<form id="signin"><input id="customer" value="4242" size="6" aria-label="customer number">
       <button id="signin-button">Sign in</button></form>`;
  document.querySelector("#cart-count").textContent = String(
    cart().reduce((n, l) => n + l.quantity, 0),
  );
  const form = document.querySelector("#signin");
  form?.addEventListener("submit", (e) => {
    e.preventDefault();
    const id = document.querySelector("#customer").value.trim();
    put("customer", id);
    tracker.identify(id);
    render();
  });
  const banner = document.querySelector("#consent");
  banner.hidden = get("consent", null) !== null;
}

document.body.insertAdjacentHTML(
  "afterbegin",
  `<header><a href="index.html" class="brand">Demo shop</a>
   <nav><a href="index.html" id="nav-products">Products</a>
   <a href="cart.html" id="nav-cart">Cart (<span id="cart-count">0</span>)</a>
   <a href="${config.endpoint}/?refresh=250" target="_blank">Dashboard</a></nav>
   <form id="search" action="index.html"><input id="q" name="q" placeholder="Search products"
   aria-label="search"> <button id="search-button">Search</button></form>
   <span id="account"></span></header>
   <div id="consent" hidden>This shop measures visits to improve itself.
   <button id="consent-yes">Allow analytics</button> <button id="consent-no">No thanks</button></div>`,
);
document.querySelector("#consent-yes").addEventListener("click", () => {
  put("consent", "granted");
  tracker.setConsent(true);
  if (customer()) tracker.identify(customer());
  render();
});
document.querySelector("#consent-no").addEventListener("click", () => {
  put("consent", "denied");
  tracker.setConsent(false);
  render();
});
render();
