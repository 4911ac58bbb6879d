// Requests to the OData (and STAC) APIs, with the bearer token when logged in, and their errors in words.
import { currentToken } from "./auth";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function authHeaders(): Record<string, string> {
  const token = currentToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** JSON of a GET; an API refusal becomes an ApiError carrying the API's own message. */
export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json", ...authHeaders() }, signal });
  } catch (error) {
    if ((error as Error).name === "AbortError") throw error;
    throw new ApiError(0, `cannot reach ${new URL(url).origin}: ${(error as Error).message}`);
  }
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
  return (await response.json()) as T;
}

export async function errorMessage(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } | string; description?: string };
    if (typeof body.error === "object" && body.error?.message) return `${response.status} ${body.error.message}`;
    if (typeof body.error === "string") return `${response.status} ${body.description ?? body.error}`;
  } catch {
    // not JSON: say what came
  }
  return `${response.status} ${response.statusText}${text ? `: ${text.slice(0, 300)}` : ""}`;
}
