// A bounded pool of async tasks, for running one speech-engine process per utterance a few at a time.

/** Runs task(0..count-1) with at most `limit` in flight; the first failure stops new tasks and is rethrown. */
export async function runPool(count: number, limit: number, task: (index: number, worker: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (id: number) => {
    while (failure === undefined && next < count) {
      const index = next++;
      try {
        await task(index, id);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, (_, id) => worker(id)));
  if (failure !== undefined) throw failure;
}
