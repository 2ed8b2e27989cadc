import { DeliveryError } from '../../master/notify/notifier';

/** The rejection of a send that must fail, checked to be a DeliveryError (so its `transient` and `retryAfterMs` can be asserted). */
export async function deliveryFailure(promise: Promise<unknown>): Promise<DeliveryError> {
  const err = await promise.then(
    () => {
      throw new Error('expected the send to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}
