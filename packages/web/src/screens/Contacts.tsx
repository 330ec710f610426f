import { useState } from 'react';
import { useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { Avatar, Empty, Header, Link, Notice } from './common.tsx';
import { Icon } from './icons.tsx';
import { useRovingFocus } from '../roving.ts';

/** Remove or block a friend, each after a confirmation. */
function FriendMenu(props: { name: string; onRemove(): void; onBlock(): void }) {
  const [open, setOpen] = useState(false);
  return (
    <div className="row-menu">
      <button type="button" className="icon-button" aria-haspopup="menu" aria-expanded={open} aria-label={`Options for ${props.name}`} data-testid="friend-menu" onClick={() => setOpen(!open)}>
        <Icon name="more" />
      </button>
      {open && (
        <div className="menu" role="menu" onKeyDown={(e) => e.key === 'Escape' && setOpen(false)}>
          <button
            type="button"
            role="menuitem"
            autoFocus
            data-testid="remove-friend"
            onClick={() => {
              setOpen(false);
              if (confirm(`Remove ${props.name} from your friends?`)) props.onRemove();
            }}
          >
            Remove friend
          </button>
          <button
            type="button"
            role="menuitem"
            className="danger"
            data-testid="block-user"
            onClick={() => {
              setOpen(false);
              if (confirm(`Block ${props.name}? They can no longer message you or send you friend requests.`)) props.onBlock();
            }}
          >
            Block
          </button>
        </div>
      )}
    </div>
  );
}

export function ContactsPane(props: { session: Session; showNotice?: boolean }) {
  const vm = props.session.contacts;
  const s = useVM(vm);
  const roving = useRovingFocus<HTMLUListElement>('a.row-link');
  return (
    <section className="contacts" aria-label="Contacts" data-testid="contacts">
      <Header title="Contacts">
        <Link to="/search" className="icon-button" label="Add friends" testId="add-friends">
          <Icon name="userPlus" />
        </Link>
      </Header>
      <Notice error={props.showNotice === false ? null : s.error} notice={props.showNotice === false ? null : s.notice} />
      {s.incoming.length > 0 && (
        <>
          <h2 className="section-title">Friend requests</h2>
          <ul className="rows">
            {s.incoming.map((r) => (
              <li key={r.user.id} className="row static" data-testid="incoming-request" data-user={r.user.username}>
                <Avatar name={r.user.nickname || r.user.username} id={r.user.id} />
                <span className="row-main">
                  <span className="row-title">{r.user.nickname || r.user.username}</span>
                  <span className="row-preview">{r.greeting || `@${r.user.username} wants to be friends`}</span>
                </span>
                <span className="row-actions">
                  <button type="button" className="primary small" onClick={() => void vm.accept(r.user.id)} data-testid="accept">
                    Accept
                  </button>
                  <button type="button" className="small" onClick={() => void vm.reject(r.user.id)}>
                    Decline
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
      {s.outgoing.length > 0 && (
        <>
          <h2 className="section-title">Sent requests</h2>
          <ul className="rows">
            {s.outgoing.map((r) => (
              <li key={r.user.id} className="row static" data-testid="outgoing-request">
                <Avatar name={r.user.nickname || r.user.username} id={r.user.id} />
                <span className="row-main">
                  <span className="row-title">{r.user.nickname || r.user.username}</span>
                  <span className="row-preview">Waiting for an answer</span>
                </span>
                <span className="row-actions">
                  <button type="button" className="small" onClick={() => void vm.cancel(r.user.id)}>
                    Withdraw
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
      <h2 className="section-title">Friends {s.friends.length > 0 && <span className="muted">({s.friends.length})</span>}</h2>
      {s.loaded && s.friends.length === 0 && <Empty>No friends yet. Use “Add friends” to find people by username.</Empty>}
      <ul className="rows" ref={roving.ref} onFocus={roving.onFocus} onKeyDown={roving.onKeyDown} aria-label="Friends (arrow keys move between them)">
        {s.friends.map((f) => (
          <li key={f.user.id} className="row" data-testid="friend" data-user={f.user.username}>
            <Link to={`/dm/${encodeURIComponent(f.user.id)}`} className="row-link">
              <span className="sr-only">Chat with </span>
              <Avatar name={f.user.nickname || f.user.username} id={f.user.id} src={f.user.avatar} />
              <span className="row-main">
                <span className="row-title">{f.user.nickname || f.user.username}</span>
                <span className="row-preview">@{f.user.username}</span>
              </span>
            </Link>
            <FriendMenu name={f.user.nickname || f.user.username} onRemove={() => void vm.removeFriend(f.user.id)} onBlock={() => void vm.block(f.user.id)} />
          </li>
        ))}
      </ul>
      {s.blocked.length > 0 && (
        <>
          <h2 className="section-title">Blocked</h2>
          <ul className="rows">
            {s.blocked.map((b) => (
              <li key={b.user.id} className="row static" data-testid="blocked-user" data-user={b.user.username}>
                <Avatar name={b.user.nickname || b.user.username} id={b.user.id} src={b.user.avatar} />
                <span className="row-main">
                  <span className="row-title">{b.user.nickname || b.user.username}</span>
                  <span className="row-preview">@{b.user.username}</span>
                </span>
                <span className="row-actions">
                  <button type="button" className="small" onClick={() => void vm.unblock(b.user.id)} data-testid="unblock">
                    Unblock
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
