// The REST API, with the admin token kept for this browser session only (sessionStorage).
const KEY = "hookflow.token";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** The API refused the token: the console goes back to sign-in. */
export class Unauthorized extends Error {}

/** Any other refusal; `details` holds the validation errors' paths and messages. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the API answered ${status}`);
    this.status = status;
    this.details = (body && Array.isArray(body.details)) ? body.details : [];
  }
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token.get() || ""}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    token.clear();
    throw new Unauthorized("The API refused the admin token (401): sign in again.");
  }
  const text = await response.text();
  const type = response.headers.get("Content-Type") || "";
  const data = text && type.includes("json") ? JSON.parse(text) : text;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}
